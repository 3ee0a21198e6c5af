import { type LespinasseCheck, type LespinasseOptions, lespinasseSpf } from '@spf/fault-spec';
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

// Item 5 of issue 13 for Lespinasse's SPF: each safety check, switched off, lets the explorer find the
// failure it exists to prevent (the failing schedule's replay line is printed); with every check on, the
// same scenarios explore clean at the same budget. Budgets and seeds are fixed, so every run is the same.

const A = 0x5000_0000; // 1 GiB-aligned region alone in the address space: munmap frees every table level
const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const MEMORY = 16 * 1024 * 1024;

/** The checks a scenario runs without: none, one, or several. */
type Off = LespinasseCheck | readonly LespinasseCheck[] | null;

function handler(off: Off, extra: LespinasseOptions = {}) {
  const list = off === null ? [] : typeof off === 'string' ? [off] : off;
  return lespinasseSpf({ ...extra, checks: Object.fromEntries(list.map((c) => [c, false])) });
}

/**
 * A thread on CPU 1 first-touches three pages (speculative anonymous faults) while the main thread on CPU 0
 * unmaps the whole region. With every check a fault either commits before munmap zaps the table or aborts;
 * the mm invariants (checked at exit) and the frame accounting hold.
 */
function munmapRace(off: Off, pages = 4, pgtableFreeRcu = false): Scenario {
  return {
    name: `lespinasse: faults against munmap${pgtableFreeRcu ? ' (page tables freed by RCU, RCU walk guard)' : ''}`,
    cpus: 2,
    setup(m) {
      const sys = boot({ machine: m, memory: MEMORY, pgtableFreeRcu, faultHandler: handler(off) });
      sys.spawnProcess('spf', function* (u) {
        yield* u.mmap(A, pages * P, RW, ANON);
        yield* u.store8(A, 1); // the anon_vma and the page tables exist from here on
        yield* u.spawnThread(function* (w) {
          for (let p = 1; p < pages; p++) yield* w.store8(A + p * P, p);
        }, 1);
        yield* u.munmap(A, pages * P);
      });
    },
  };
}

/**
 * The munmap race with the faulting thread preemptible wherever it runs with interrupts and preemption on:
 * a CPU-bound thread shares CPU 1 and the scheduler tick is 1 us (`cost.tick`, for this scenario only). The
 * explorer orders steps across CPUs, but preemption and IPI delivery follow each CPU's simulated clock; a
 * walk takes tens of nanoseconds, so the default 1 ms tick would almost never stop it, while on real hardware
 * any interrupt (or a vCPU preempted by its hypervisor) can stop the faulting CPU between two reads for as
 * long as munmap needs. While the CPU-bound thread runs, CPU 1 takes munmap's shootdown IPI at once, so
 * the tables are freed (after the IPI, or after the grace period with `pgtableFreeRcu`) under a preempted
 * reader that is outside its walk guard.
 */
function munmapPreempted(off: Off, pgtableFreeRcu = false): Scenario {
  return {
    name: `lespinasse: preemptible faults against munmap${pgtableFreeRcu ? ' (page tables freed by RCU, RCU walk guard)' : ''}`,
    cpus: 2,
    cost: { tick: 1000 },
    setup(m) {
      const sys = boot({ machine: m, memory: MEMORY, pgtableFreeRcu, faultHandler: handler(off) });
      sys.spawnProcess('spf', function* (u) {
        yield* u.mmap(A, 8 * P, RW, ANON);
        yield* u.store8(A, 1);
        yield* u.spawnThread(function* (w) {
          for (let p = 1; p < 8; p++) yield* w.store8(A + p * P, p);
        }, 1);
        yield* u.spawnThread(function* () {
          for (let i = 0; i < 40; i++) yield delayEffect(2000, 'user: compute');
        }, 1);
        yield* u.munmap(A, 8 * P);
      });
    },
  };
}
const munmapPreemptedRcu = (off: Off) => munmapPreempted(off, true);

/**
 * Eight one-page VMAs next to a touched page, so their PTEs share its page table: a thread on CPU 1 reads
 * each (a speculative lookup and VMA copy), while CPU 0 unmaps all eight. Nothing was mapped in them and no
 * table is freed, so munmap sends no TLB shootdown that would wait for CPU 1: only RCU keeps the VMAs (and
 * the replaced tree nodes) alive under the lockless lookup.
 */
function vmaFreeRace(off: Off): Scenario {
  return {
    name: 'lespinasse: VMA lookups against munmap',
    cpus: 2,
    setup(m) {
      const sys = boot({ machine: m, memory: MEMORY, faultHandler: handler(off) });
      sys.spawnProcess('spf', function* (u) {
        yield* u.mmap(A, P, RW, ANON);
        yield* u.store8(A, 1);
        // Alternate protections so that the eight VMAs do not merge into one.
        for (let i = 1; i <= 8; i++) yield* u.mmap(A + i * P, P, i % 2 ? PROT_READ : RW, ANON);
        yield* u.spawnThread(function* (w) {
          for (let i = 1; i <= 8; i++) yield* w.load8(A + i * P);
        }, 1);
        yield* u.munmap(A + P, 8 * P);
      });
    },
  };
}

/**
 * Copy-on-write of zero-page mappings on CPU 0 (wp_page_copy() clears the PTE and flushes every CPU's TLB,
 * an IPI, while holding the PTE lock) while a thread on CPU 1 first-touches pages of the same page table
 * (speculative faults that need that PTE lock, taken with interrupts off inside the walk guard).
 */
function cowRace(off: Off): Scenario {
  return {
    name: 'lespinasse: faults against a COW shootdown',
    cpus: 2,
    maxSteps: 200_000,
    setup(m) {
      const sys = boot({ machine: m, memory: MEMORY, faultHandler: handler(off) });
      const seen: number[] = [];
      sys.spawnProcess('spf', function* (u) {
        yield* u.mmap(A, 16 * P, RW, ANON);
        yield* u.store8(A + 15 * P, 1);
        for (let i = 0; i < 4; i++) yield* u.load8(A + i * P); // zero page, read-only
        yield* u.spawnThread(function* (w) {
          for (let i = 4; i < 12; i++) yield* w.store8(A + i * P, i);
        }, 1);
        for (let i = 0; i < 4; i++) yield* u.store8(A + i * P, 0x40 + i); // COW break, with a shootdown
        for (let i = 0; i < 4; i++) seen.push(yield* u.load8(A + i * P));
      });
      return () => expect(seen).toEqual([0x40, 0x41, 0x42, 0x43]);
    },
  };
}

interface SwitchCase {
  readonly check: LespinasseCheck;
  readonly scenario: (off: Off) => Scenario;
  readonly explore: ExploreOptions;
  /** What the explorer reports without the check. */
  readonly report: RegExp;
  readonly breaks: string;
}

const CASES: readonly SwitchCase[] = [
  {
    check: 'mmapSeqCheck',
    scenario: munmapRace,
    explore: { policy: 'random', runs: 150, seed: 1 },
    report: /invariants.*RSS counter/is,
    breaks: 'a fault that started while munmap held mmap_lock commits a page into the region being unmapped',
  },
  {
    check: 'mmapSeqRecheck',
    scenario: munmapRace,
    explore: { policy: 'pct', depth: 3, runs: 150, seed: 1 },
    report: /invariants.*RSS counter/is,
    breaks:
      'a page is committed after munmap zapped the table, which is then freed with the page still mapped',
  },
  {
    check: 'rcuFreeVma',
    scenario: vmaFreeRace,
    explore: { policy: 'pct', depth: 3, runs: 200, seed: 1 },
    report: /use-after-free.*freed vma/is,
    breaks: 'the lookup reads a VMA that munmap freed meanwhile',
  },
  {
    check: 'mmapSeqCheckBeforePtl',
    scenario: munmapPreempted,
    explore: { policy: 'pct', depth: 3, runs: 2000, seed: 1 },
    report: /USE-AFTER-FREE: .*freed by (PD|PDPT) free by task 'spf\[1\.1\]'/,
    breaks:
      'a fault preempted after its walk re-reads the PMD in a page directory munmap freed meanwhile (the walk guard alone cannot keep tables freed before it began)',
  },
  {
    check: 'speculativePageWalk',
    scenario: munmapPreempted,
    explore: { policy: 'pct', depth: 4, runs: 2000, seed: 1 },
    report: /USE-AFTER-FREE: .*freed by (PD|PDPT|page table) free by task 'spf\[1\.1\]'/,
    breaks: 'a walk preempted between two reads reads a page-table page munmap freed under it',
  },
  {
    check: 'speculativePageWalk',
    scenario: munmapPreemptedRcu,
    explore: { policy: 'pct', depth: 4, runs: 2000, seed: 1 },
    report: /USE-AFTER-FREE: .*freed by (PD|PDPT|page table) free by task 'rcu_gp'/,
    breaks:
      'with page tables freed by RCU, a walk outside rcu_read_lock() does not hold the grace period: it reads a table the RCU callback freed',
  },
  {
    check: 'ptlTrylock',
    scenario: cowRace,
    explore: { policy: 'pct', depth: 3, runs: 60, seed: 1 },
    report: /step-limit.*waiting for 1 IPI ack.*irqs off.*read ptl/is,
    breaks:
      'CPU 1 spins on the PTE lock with interrupts off while its holder waits for CPU 1 to take a shootdown IPI',
  },
];

/** Runs `exploreInTest` expecting it to find a failure; prints the report with its replay line. */
function expectFailure(c: SwitchCase, name: string): string {
  let message = '';
  try {
    exploreInTest(c.scenario(c.check), c.explore, name);
  } catch (e) {
    if (!(e instanceof ExplorationFailure)) throw e;
    message = e.message;
  }
  expect(message, `exploring without ${c.check} found nothing`).not.toBe('');
  console.log(`without ${c.check}: ${c.breaks}\n${message}`);
  return message;
}

// Explorations of 2,000 schedules take tens of seconds on a loaded machine: a generous timeout per test.
describe('lespinasseSpf: every safety check, switched off, is caught by the explorer (explored)', {
  timeout: 300_000,
}, () => {
  for (const c of CASES) {
    const rcu = c.scenario === munmapPreemptedRcu ? ' (page tables freed by RCU)' : '';
    const name = `without ${c.check}${rcu}, the explorer finds the failure (explored)`;
    it(name, () => {
      expect(expectFailure(c, name)).toMatch(c.report);
    });
  }

  const scenarios = [munmapRace, vmaFreeRace, cowRace, munmapPreempted, munmapPreemptedRcu];
  for (const sc of scenarios) {
    const budgets = CASES.filter((c) => c.scenario === sc).map((c) => c.explore);
    const name = `with every check on, ${sc(null).name} explores clean at the same budget (explored)`;
    it(name, () => {
      for (const b of budgets) {
        const res = exploreInTest(sc(null), b, name);
        expect(res.failure).toBeNull();
        expect(res.runs).toBe(b.runs);
      }
    });
  }

  const rcuName =
    'with every check on and page tables freed by RCU, faults against munmap explore clean (explored)';
  it(rcuName, () => {
    const res = exploreInTest(
      munmapRace(null, 4, true),
      { policy: 'pct', depth: 3, runs: 150, seed: 1 },
      rcuName,
    );
    expect(res.failure).toBeNull();
  });

  // pmd_same() in __pte_map_lock() has no failure of its own on the kernel the series targets: every change of
  // a PMD that links a PTE table (free_pgtables() after munmap detached the VMAs, mremap's table moves, THP
  // collapse) happens with mmap_lock held for writing, so mmap_seq has moved, and the mmap_seq checks on
  // either side of the trylock abort the fault. This test holds that claim against the munmap races.
  const pmdSameAlone =
    'without pmdSame alone, the munmap races explore clean: mmap_seq catches every change (explored)';
  it(pmdSameAlone, () => {
    for (const sc of [munmapPreempted, munmapPreemptedRcu]) {
      const res = exploreInTest(
        sc('pmdSame'),
        { policy: 'pct', depth: 3, runs: 2000, seed: 1 },
        pmdSameAlone,
      );
      expect(res.failure).toBeNull();
    }
    const res = exploreInTest(munmapRace('pmdSame'), { policy: 'random', runs: 150, seed: 1 }, pmdSameAlone);
    expect(res.failure).toBeNull();
  });

  const dfsName = 'with every check on, one fault against munmap explores clean under bounded DFS (explored)';
  it(dfsName, () => {
    const res = exploreInTest(munmapRace(null, 2), { policy: 'dfs', bound: 1, runs: 2000 }, dfsName);
    expect(res.failure).toBeNull();
    console.log(`dfs bound 1: ${res.runs} schedules, exhausted: ${res.exhausted}`);
  });
});
