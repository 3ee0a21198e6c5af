import { dufourSpf, FaultSpecConfigError } from '@spf/fault-spec';
import { exploreInTest, type Scenario } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';

const A = 0x5000_0000;
const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('Dufour SPF v12: questions 3 and 4 at boot', () => {
  it('refuses to boot without pte_special, naming the option and the reason', () => {
    expect(() => boot({ pteSpecial: false, faultHandler: dufourSpf() })).toThrow(FaultSpecConfigError);
    expect(() => boot({ pteSpecial: false, faultHandler: dufourSpf() })).toThrow(/ARCH_HAS_PTE_SPECIAL/);
    expect(
      boot({ pteSpecial: false, faultHandler: dufourSpf({ unsafeWithoutPteSpecial: true }) }).faultHandler
        .name,
    ).toBe('dufour');
  });
  it('refuses specPgtableAlloc unless the mms free page tables under page_table_lock', () => {
    expect(() => boot({ faultHandler: dufourSpf({ specPgtableAlloc: true }) })).toThrow(
      /freePgtablesUnderPtl: true/,
    );
    const sys = boot({ freePgtablesUnderPtl: true, faultHandler: dufourSpf({ specPgtableAlloc: true }) });
    const proc = sys.spawnProcess('p', function* () {});
    expect(proc.mm.freePgtablesUnderPtl).toBe(true);
  });
});

/**
 * A thread's speculative faults install a missing PTE table (specPgtableAlloc) while the main thread unmaps the
 * range and frees that table (both under mm->page_table_lock).
 */
function pgtableScenario(): Scenario {
  return {
    name: 'dufour specPgtableAlloc: faults allocating page tables vs munmap freeing them',
    cpus: 2,
    setup(m) {
      const sys = boot({
        machine: m,
        memory: 8 << 20,
        freePgtablesUnderPtl: true,
        faultHandler: dufourSpf({ specPgtableAlloc: true }),
      });
      sys.spawnProcess('q3', function* (u) {
        // The VMA gets its anon_vma and the page tables of its second 2 MiB; the first PTE table is missing.
        yield* u.mmap(A, 600 * P, RW, ANON);
        yield* u.store8(A + 520 * P, 1);
        yield* u.spawnThread(function* (t) {
          for (let i = 0; i < 3; i++) yield* t.store8(A + i * P, 7);
        }, 1);
        yield* u.munmap(A, 512 * P); // frees the first PTE table if the faults installed it
      });
      return () => expect(sys.processes[0].status).not.toBeNull();
    },
  };
}

describe('Dufour SPF v12 with specPgtableAlloc (question 3)', { timeout: 240_000 }, () => {
  it('faults that allocate page tables speculatively explore clean against munmap (pct 300 x depth 3)', () => {
    const res = exploreInTest(
      pgtableScenario(),
      { policy: 'pct', runs: 300, seed: 1, depth: 3 },
      'faults that allocate page tables speculatively explore clean against munmap (pct 300 x depth 3)',
    );
    expect(res.failure).toBeNull();
  });
  it('allocates the missing tables speculatively and counts what aborts without the option', () => {
    const counts: Record<string, number>[] = [];
    for (const spec of [false, true]) {
      const sys = boot({
        cpus: 2,
        freePgtablesUnderPtl: true,
        faultHandler: dufourSpf({ specPgtableAlloc: spec }),
      });
      sys.spawnProcess('q3', function* (u) {
        yield* u.mmap(A, 600 * P, RW, ANON); // spans two PTE tables (A is 2 MiB aligned: 512 pages each)
        yield* u.store8(A, 1);
        let done = false;
        yield* u.spawnThread(function* (t) {
          yield* t.store8(A + 520 * P, 2); // the second PTE table does not exist yet
          done = true;
        }, 1);
        while (!done) yield* u.schedYield();
      });
      expect(sys.run().ok).toBe(true);
      counts.push({ ...(sys.faultHandler.counters ?? {}) });
    }
    expect(counts[0]).toMatchObject({ spf_pgtable_missing: 1, speculative_pgfault: 0, spf_pgtable_alloc: 0 });
    expect(counts[1]).toMatchObject({ spf_pgtable_missing: 0, speculative_pgfault: 1, spf_pgtable_alloc: 1 });
  });
});

/**
 * Question 4: without pte_special, vm_normal_page() reads vm_flags, vm_start and vm_pgoff. Write faults on the
 * zero page (do_wp_page -> vm_normal_page -> wp_page_copy) race a munmap of part of the VMA.
 */
function q4Scenario(): Scenario {
  return {
    name: 'dufour without pte_special: COW of the zero page vs munmap',
    cpus: 2,
    setup(m) {
      const sys = boot({
        machine: m,
        memory: 8 << 20,
        pteSpecial: false,
        faultHandler: dufourSpf({ unsafeWithoutPteSpecial: true }),
      });
      const seen: number[] = [];
      sys.spawnProcess('q4', function* (u) {
        yield* u.mmap(A, 4 * P, RW, ANON);
        yield* u.store8(A + 3 * P, 9);
        for (let i = 0; i < 3; i++) yield* u.load8(A + i * P); // zero-page PTEs, not special
        yield* u.spawnThread(function* (t) {
          for (let i = 0; i < 3; i++) {
            yield* t.store8(A + i * P, i + 1);
            seen.push(yield* t.load8(A + i * P));
          }
        }, 1);
        yield* u.munmap(A + 2 * P, P);
      });
      return () => {
        expect(sys.processes[0].status).not.toBeNull();
        for (const v of seen) expect([1, 2, 3]).toContain(v);
      };
    },
  };
}

describe('Dufour SPF v12 without pte_special (question 4)', { timeout: 240_000 }, () => {
  it('on this substrate COW of non-special zero-page PTEs explores clean (pct 300 x depth 3)', () => {
    const res = exploreInTest(
      q4Scenario(),
      { policy: 'pct', runs: 300, seed: 1, depth: 3 },
      'on this substrate COW of non-special zero-page PTEs explores clean (pct 300 x depth 3)',
    );
    expect(res.failure).toBeNull();
  });
});
