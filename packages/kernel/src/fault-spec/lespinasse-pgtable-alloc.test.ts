import { FaultSpecConfigError, type LespinasseCounters, lespinasseSpf } from '@spf/fault-spec';
import { exploreInTest, type Scenario } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';

// Question 3 of Lespinasse's review, answered for his own design: with page tables freed under
// mm->page_table_lock (boot freePgtablesUnderPtl), a speculative fault may install a missing table under that
// lock after re-checking mmap_seq there (option specPgtableAlloc); without the option such faults abort.

const A = 0x5000_0000;
const MB2 = 2 * 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** Touches the first page of four 2 MiB regions of one VMA; returns the design's counters. */
function run(specPgtableAlloc: boolean): LespinasseCounters {
  const sys = boot({
    cpus: 2,
    memory: 16 * 1024 * 1024,
    freePgtablesUnderPtl: true,
    faultHandler: lespinasseSpf({ specPgtableAlloc }),
  });
  const seen: number[] = [];
  sys.spawnProcess('q3', function* (u) {
    yield* u.mmap(A, 4 * MB2, RW, ANON);
    yield* u.store8(A, 1); // classic: allocates the anon_vma and the first tables
    for (let r = 1; r < 4; r++) yield* u.store8(A + r * MB2, r);
    for (let r = 0; r < 4; r++) seen.push(yield* u.load8(A + r * MB2));
  });
  expect(sys.run().ok).toBe(true);
  expect(seen).toEqual([1, 1, 2, 3]);
  return sys.faultHandler.counters as LespinasseCounters;
}

describe('lespinasseSpf: speculative page-table allocation (question 3)', () => {
  it('without specPgtableAlloc, a fault that finds its page table missing aborts (SPF_ABORT_PMD)', () => {
    const c = run(false);
    expect(c.SPF_ABORT_PMD).toBe(3);
    expect(c.spf_pgtable_alloc).toBe(0);
  });

  it('with it, the fault installs the table under page_table_lock and finishes speculatively', () => {
    const c = run(true);
    expect(c.SPF_ABORT_PMD).toBe(0);
    // The first store installed its tables too, then aborted: the VMA had no anon_vma yet (SPF_ABORT_ANON_VMA,
    // checked after the walk as in the series); the classic fault that followed used those tables.
    expect(c.spf_pgtable_alloc).toBe(4);
    expect(c.SPF_ABORT_ANON_VMA).toBe(1);
    expect(c.spf_abort).toBe(1);
    expect(c.spf_attempt).toBe(4);
  });

  const name =
    'speculative table allocation against munmap freeing tables under page_table_lock explores clean (explored)';
  it(name, () => {
    const scenario: Scenario = {
      name,
      cpus: 2,
      setup(m) {
        const sys = boot({
          machine: m,
          memory: 16 * 1024 * 1024,
          freePgtablesUnderPtl: true,
          faultHandler: lespinasseSpf({ specPgtableAlloc: true }),
        });
        sys.spawnProcess('q3', function* (u) {
          yield* u.mmap(A, 4 * MB2, RW, ANON);
          yield* u.store8(A, 1);
          yield* u.spawnThread(function* (w) {
            for (let r = 1; r < 4; r++) yield* w.store8(A + r * MB2, r);
          }, 1);
          yield* u.munmap(A, 4 * MB2);
        });
      },
    };
    expect(exploreInTest(scenario, { policy: 'pct', depth: 3, runs: 80, seed: 1 }, name).failure).toBeNull();
  });
});

describe('lespinasseSpf: unsafe combinations are refused at boot', () => {
  it('specPgtableAlloc on a system that frees page tables outside page_table_lock', () => {
    expect(() => boot({ faultHandler: lespinasseSpf({ specPgtableAlloc: true }) })).toThrow(
      FaultSpecConfigError,
    );
    expect(() => boot({ faultHandler: lespinasseSpf({ specPgtableAlloc: true }) })).toThrow(
      /freePgtablesUnderPtl/,
    );
  });

  it('an RCU walk guard on a system that frees page tables right after the shootdown', () => {
    expect(() => boot({ faultHandler: lespinasseSpf({ pageWalk: 'rcu' }) })).toThrow(
      /pageWalk: 'rcu'.*pgtableFreeRcu/,
    );
    expect(
      boot({ pgtableFreeRcu: true, faultHandler: lespinasseSpf({ pageWalk: 'rcu' }) }).faultHandler.name,
    ).toBe('lespinasse');
  });
});
