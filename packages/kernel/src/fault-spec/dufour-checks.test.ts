import { type DufourChecks, dufourSpf } from '@spf/fault-spec';
import {
  delayEffect,
  ExplorationFailure,
  type ExploreOptions,
  exploreInTest,
  type Scenario,
} from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';
import type { UserContext } from '../user-context.js';

// Item 5 of issue 13 for Dufour's SPF v12: each safety check removed is caught by the explorer (PCT, 2 CPUs,
// at most 2,000 schedules), and with every check on the same scenarios explore clean at the same budget.

const A = 0x5000_0000; // 2 MiB aligned: unmapping the whole region frees its page tables
const P = 4096;
const N = 8;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

type Body = (u: UserContext) => Generator<unknown, void, unknown>;

/**
 * A process whose main thread (CPU 0) prepares a region, starts a second thread (CPU 1) running `other`,
 * then runs `main`. The system checks the mm invariants and that every frame is freed at the end of the run.
 */
function scenario(
  name: string,
  off: Partial<DufourChecks>,
  prepare: Body,
  main: Body,
  other: Body,
): Scenario {
  return {
    name,
    cpus: 2,
    setup(m) {
      const sys = boot({ machine: m, memory: 8 << 20, faultHandler: dufourSpf({ checks: off }) });
      sys.spawnProcess('spf', function* (u) {
        yield* prepare(u);
        yield* u.spawnThread(other as Parameters<UserContext['spawnThread']>[0], 1);
        yield* main(u);
      } as Parameters<typeof sys.spawnProcess>[1]);
      return () => expect(sys.processes[0].status).not.toBeNull();
    },
  };
}

/** N pages; the first is touched, so the VMA has its anon_vma and the region its page tables. */
function* region(u: UserContext) {
  yield* u.mmap(A, N * P, RW, ANON);
  yield* u.store8(A, 1);
}

/** The second thread's speculative first-touch stores to pages 1..N-1. */
function* storer(t: UserContext) {
  for (let i = 1; i < N; i++) yield* t.store8(A + i * P, i);
}

/** munmap of pages 1..N-1 (the VMA is split; the page tables stay) against the stores. */
const munmapTail = (off: Partial<DufourChecks>) =>
  scenario(
    'dufour: stores vs munmap of the tail',
    off,
    region,
    function* (u) {
      yield* u.munmap(A + P, (N - 1) * P);
    },
    storer,
  );

/** munmap of the whole region (its page tables are freed) against the stores. */
const munmapAll = (off: Partial<DufourChecks>) =>
  scenario(
    'dufour: stores vs munmap of everything',
    off,
    region,
    function* (u) {
      yield* u.munmap(A, N * P);
    },
    storer,
  );

/**
 * A copy-on-write break of the zero page on CPU 0 (wp_page_copy flushes the TLBs holding the PTE lock)
 * against a speculative read fault on CPU 1 in the same PTE table (pte_map_lock runs with interrupts off).
 */
const cowFlush = (off: Partial<DufourChecks>) =>
  scenario(
    'dufour: read fault vs COW flush under the PTL',
    off,
    function* (u) {
      yield* u.mmap(A, 3 * P, RW, ANON);
      yield* u.store8(A + 2 * P, 1);
      yield* u.load8(A); // page 0 maps the zero page
    },
    function* (u) {
      yield* u.store8(A, 5);
    },
    function* (t) {
      yield* t.load8(A + P);
    },
  );

/**
 * munmap of the whole region (every table level is freed) against the stores, with the storing thread
 * preemptible anywhere it runs with interrupts and preemption on: a CPU-bound thread shares CPU 1 and the
 * scheduler tick is 1 us (`cost.tick`, for this scenario only). The explorer orders steps across CPUs, but
 * preemption and IPI delivery follow each CPU's simulated clock; a walk takes tens of nanoseconds and the
 * default 1 ms tick would almost never fall inside it, while on real hardware any interrupt (or a vCPU
 * preempted by its hypervisor) can stop the walker between two reads for as long as munmap needs. While the
 * CPU-bound thread runs, CPU 1 acknowledges munmap's shootdown at once, so the tables are freed before the
 * preempted walker reads them again, unless its interrupts are off.
 */
const munmapPreempted = (off: Partial<DufourChecks>): Scenario => {
  const s = scenario(
    'dufour: preemptible stores vs munmap of everything',
    off,
    region,
    function* (u) {
      yield* u.spawnThread(function* () {
        for (let i = 0; i < 40; i++) yield delayEffect(2000, 'user: compute');
      }, 1);
      yield* u.munmap(A, N * P);
    },
    storer,
  );
  return { ...s, cost: { tick: 1000 } };
};

const pct = (runs: number, depth: number, seed = 1): ExploreOptions => ({ policy: 'pct', runs, seed, depth });

/** Explores `s` and expects a failure matching `what`; prints its first lines and the replay command. */
function expectCaught(s: Scenario, opts: ExploreOptions, name: string, what: RegExp): void {
  let caught: unknown = null;
  try {
    exploreInTest(s, opts, name);
  } catch (e) {
    caught = e;
  }
  expect(caught, `${name}: nothing found within ${opts.runs} schedules`).toBeInstanceOf(ExplorationFailure);
  const msg = (caught as Error).message;
  console.log(`${name}\n${msg.split('\n').slice(0, 3).join('\n')}\n${msg.match(/SPF_REPLAY=.*$/m)?.[0]}`);
  expect(msg).toMatch(what);
}

// Explorations take seconds each (tens on a loaded machine): a generous timeout per test.
describe('Dufour SPF v12 with every check on explores clean', { timeout: 240_000 }, () => {
  it('stores vs munmap of the tail (all checks, pct 300 x depth 3)', () => {
    expect(
      exploreInTest(
        munmapTail({}),
        pct(300, 3),
        'stores vs munmap of the tail (all checks, pct 300 x depth 3)',
      ).failure,
    ).toBeNull();
  });
  it('stores vs munmap of everything (all checks, pct 1500 x depth 4)', () => {
    expect(
      exploreInTest(
        munmapAll({}),
        pct(1500, 4),
        'stores vs munmap of everything (all checks, pct 1500 x depth 4)',
      ).failure,
    ).toBeNull();
  });
  it('read fault vs COW flush under the PTL (all checks, pct 300 x depth 3)', () => {
    expect(
      exploreInTest(
        cowFlush({}),
        pct(300, 3),
        'read fault vs COW flush under the PTL (all checks, pct 300 x depth 3)',
      ).failure,
    ).toBeNull();
  });
  it('preemptible stores vs munmap of everything (all checks, pct 2000 x depth 3 and 4)', () => {
    for (const depth of [3, 4]) {
      const name = `preemptible stores vs munmap of everything (all checks, pct 2000 x depth ${depth})`;
      expect(exploreInTest(munmapPreempted({}), pct(2000, depth), name).failure).toBeNull();
    }
  });
  it('read fault vs COW flush under the PTL (all checks, bounded DFS)', () => {
    const res = exploreInTest(
      cowFlush({}),
      { policy: 'dfs', bound: 1, runs: 400 },
      'read fault vs COW flush under the PTL (all checks, bounded DFS)',
    );
    expect(res.failure).toBeNull();
    expect(res.runs).toBeGreaterThan(50);
  });
});

// pmd_same() in pte_spinlock()/pte_map_lock() (v12, under CONFIG_TRANSPARENT_HUGEPAGE) is a second line: every
// change of a PMD that links a PTE table also changes the VMA's vm_sequence or detaches it (free_pgtables runs
// after munmap's detach; mremap and v12's collapse_huge_page() write inside vm_write_begin()/vm_write_end()),
// and vma_has_changed() runs just before it. This test holds that claim against the munmap races.
describe('Dufour SPF v12: pmdSame alone has no failure of its own', { timeout: 240_000 }, () => {
  it('pmdSame off: the munmap races explore clean (vma_has_changed() catches every PMD change)', () => {
    const name = 'pmdSame off: the munmap races explore clean (vma_has_changed() catches every PMD change)';
    expect(exploreInTest(munmapAll({ pmdSame: false }), pct(1500, 4), name).failure).toBeNull();
    expect(exploreInTest(munmapPreempted({ pmdSame: false }), pct(2000, 3), name).failure).toBeNull();
  });
});

describe('Dufour SPF v12: each check removed is caught by the explorer', { timeout: 240_000 }, () => {
  it('rcuFreeVma off: find_vma_rcu takes its reference on a VMA munmap already freed', () => {
    expectCaught(
      munmapTail({ rcuFreeVma: false }),
      pct(300, 3),
      'rcuFreeVma off: find_vma_rcu takes its reference on a VMA munmap already freed',
      // The same get_vma() on a freed VMA, reported by KASAN's poison or by refcount_t's addition on 0,
      // whichever check the schedule reaches first.
      /get_vma accessed freed vma|refcount_inc on 'vma#\d+\.vm_ref_count'.*the object's reference counting/,
    );
  });
  it('vmaRefcount off: the fault reads its VMA after the grace period freed it', () => {
    expectCaught(
      munmapTail({ vmaRefcount: false }),
      pct(300, 3),
      'vmaRefcount off: the fault reads its VMA after the grace period freed it',
      /USE-AFTER-FREE: .*accessed freed vma/,
    );
  });
  it('ptlRecheck off: a page is mapped after munmap zapped the range', () => {
    expectCaught(
      munmapAll({ ptlRecheck: false }),
      pct(300, 3),
      'ptlRecheck off: a page is mapped after munmap zapped the range',
      /free_pgtables: page table .* still maps pages|RSS counter/,
    );
  });
  it('detachedCheck off: a page is mapped into a VMA munmap unlinked', () => {
    expectCaught(
      munmapAll({ detachedCheck: false }),
      pct(1500, 4),
      'detachedCheck off: a page is mapped into a VMA munmap unlinked',
      /free_pgtables: page table .* still maps pages|RSS counter/,
    );
  });
  it('irqOffWalk off: a preempted walk reads a page-table page munmap freed', () => {
    expectCaught(
      munmapPreempted({ irqOffWalk: false }),
      pct(2000, 3),
      'irqOffWalk off: a preempted walk reads a page-table page munmap freed',
      /USE-AFTER-FREE: .*freed by (PD|PDPT|page table) free by task 'spf\[1\.1\]'/,
    );
  });
  it('vmaChangedBeforeLock off: pte_map_lock re-reads the PMD in a page directory munmap freed', () => {
    expectCaught(
      munmapPreempted({ vmaChangedBeforeLock: false }),
      pct(2000, 4),
      'vmaChangedBeforeLock off: pte_map_lock re-reads the PMD in a page directory munmap freed',
      /USE-AFTER-FREE: .*freed by PD free by task 'spf\[1\.1\]'/,
    );
  });
  it('ptlTrylock off: spinning on the PTL with interrupts off never lets the COW flush IPI in', () => {
    expectCaught(
      cowFlush({ ptlTrylock: false }),
      pct(300, 3),
      'ptlTrylock off: spinning on the PTL with interrupts off never lets the COW flush IPI in',
      /CPU 0 next: ipi flush_tlb_mm_range -> 1; CPU 1 next: spin ptl/,
    );
  });
});
