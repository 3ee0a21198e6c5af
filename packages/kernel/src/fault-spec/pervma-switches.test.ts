import type { PerVmaLockOptions } from '@spf/fault-spec';
import { ExplorationFailure, type ExploreOptions, exploreInTest } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import {
  anonVmaPrepareVsMunmap,
  forkVsCowFault,
  mergeVsWriteFault,
  mprotectVsWriteFault,
  mremapVsWriteFault,
  munmapQuietVsWriteFault,
  munmapVsWriteFault,
  type PervmaScenario,
  splitLowerVsWriteFault,
  twoWritersVsMremap,
} from './pervma-scenarios.js';

/**
 * Issue 13, item 5, for Linux 6.4's per-VMA locks: for each safety check, the explorer finds the failure that
 * removing it causes (and prints the replay line); with every check on, the same scenarios explore clean at
 * the same budget; a bounded DFS covers the smallest one. Checks whose failure this substrate cannot show
 * are explained in the package README's table instead.
 */

/** One budget for every scenario: PCT, depth 3 (two priority change points), at most this many schedules. */
const BUDGET: ExploreOptions = { policy: 'pct', seed: 1, depth: 3, runs: 150 };

type Case = {
  readonly check: string;
  readonly options: PerVmaLockOptions;
  readonly scenario: PervmaScenario;
  readonly scenarioName: string;
  /** What the failure report must say. */
  readonly expect: RegExp;
};

const cases: readonly Case[] = [
  {
    check: 'vmaStartWrite.mprotect',
    options: { checks: { 'vmaStartWrite.mprotect': false } },
    scenario: mprotectVsWriteFault,
    scenarioName: 'mprotect(PROT_READ) vs write faults',
    expect: /invariants violated[\s\S]*(grants|writable|more than)/i,
  },
  {
    check: 'vmaStartWrite.vmaPrepare',
    options: { checks: { 'vmaStartWrite.vmaPrepare': false } },
    scenario: mergeVsWriteFault,
    scenarioName: 'mprotect merging a VMA away vs write faults',
    expect: /invariants violated/,
  },
  {
    check: 'vmaStartWrite.munmap',
    options: { checks: { 'vmaStartWrite.munmap': false } },
    scenario: munmapVsWriteFault,
    scenarioName: 'munmap vs write faults',
    expect: /free_pgtables: page table .* still maps pages|invariants violated|use-after-free/i,
  },
  {
    check: 'vmaStartWrite.mremap',
    options: { checks: { 'vmaStartWrite.mremap': false } },
    scenario: mremapVsWriteFault,
    scenarioName: 'mremap vs stores',
    expect: /the write was lost/,
  },
  {
    check: 'dupMmapStartWrite',
    options: { dupMmapStartWrite: false },
    scenario: forkVsCowFault,
    scenarioName: 'fork vs a COW fault and stores through a stale TLB entry',
    expect: /lost to the child's copy/,
  },
  {
    check: 'vmLockSeqRecheck',
    options: { checks: { vmLockSeqRecheck: false } },
    scenario: mremapVsWriteFault,
    scenarioName: 'mremap vs stores',
    expect: /the write was lost/,
  },
  {
    check: 'rangeCheck',
    options: { checks: { rangeCheck: false } },
    scenario: splitLowerVsWriteFault,
    scenarioName: 'mprotect splitting a VMA vs stores to the part that stays writable',
    expect: /writable throughout, got SIGSEGV/,
  },
  {
    check: 'detachedCheck',
    options: { checks: { detachedCheck: false } },
    scenario: munmapQuietVsWriteFault,
    scenarioName: 'munmap without shootdown vs write faults',
    expect: /invariants violated/,
  },
  {
    check: 'vmaEndWriteAllBeforeUnlock',
    options: { checks: { vmaEndWriteAllBeforeUnlock: false } },
    scenario: twoWritersVsMremap,
    scenarioName: 'mprotect, then mremap on another CPU, vs stores after the mprotect returned',
    expect: /the write was lost/,
  },
  {
    check: 'anonVmaCheck',
    options: { checks: { anonVmaCheck: false } },
    scenario: anonVmaPrepareVsMunmap,
    scenarioName: "a first fault reusing a neighbour's anon_vma vs munmap of the neighbour",
    expect: /linked to anon_vma#\d+, which was freed/,
  },
  {
    check: 'vmaTrylock',
    options: { checks: { vmaTrylock: false } },
    scenario: mprotectVsWriteFault,
    scenarioName: 'mprotect(PROT_READ) vs write faults',
    expect: /sleeping function called from invalid context.*vm_lock.*rcu_read_lock/,
  },
];

/** Explores `scenario` expecting a failure; returns the report's first line and its replay line. */
function findsFailure(name: string, c: Case): string {
  let message = '';
  try {
    exploreInTest(c.scenario(name, c.options), BUDGET, name);
  } catch (e) {
    if (!(e instanceof ExplorationFailure)) throw e;
    message = e.message;
  }
  expect(
    message,
    `removing ${c.check}: no failure within ${BUDGET.runs} ${BUDGET.policy} schedules`,
  ).not.toBe('');
  expect(message).toMatch(c.expect);
  const lines = message.split('\n');
  return [lines[0], lines[1], ...lines.filter((l) => l.includes('SPF_REPLAY='))].join('\n');
}

describe('per-VMA locks: removing a safety check is caught by the explorer (pct, depth 3, ≤150 schedules)', () => {
  for (const c of cases) {
    const name = `pervma without ${c.check}: ${c.scenarioName} fails`;
    it(name, () => {
      const report = findsFailure(name, c);
      console.log(`[pervma ${c.check}] ${report}`);
    });
  }
});

describe('per-VMA locks with every check on: the same scenarios explore clean at the same budget', () => {
  const seen = new Set<PervmaScenario>();
  for (const c of cases) {
    if (seen.has(c.scenario)) continue;
    seen.add(c.scenario);
    const name = `pervma, all checks on: ${c.scenarioName} stays correct`;
    it(name, () => {
      const res = exploreInTest(c.scenario(name, {}), BUDGET, name);
      expect(res.failure).toBeNull();
      expect(res.runs).toBe(BUDGET.runs);
    });
  }

  it('pervma without mmLockSeqEarlyOut: mremap vs stores stays correct (the re-check under the lock covers it)', () => {
    const name =
      'pervma without mmLockSeqEarlyOut: mremap vs stores stays correct (the re-check under the lock covers it)';
    const res = exploreInTest(
      mremapVsWriteFault(name, { checks: { mmLockSeqEarlyOut: false } }),
      BUDGET,
      name,
    );
    expect(res.failure).toBeNull();
  });

  it('pervma, all checks on: munmap without shootdown vs write faults, bounded DFS (one preemption)', () => {
    const name =
      'pervma, all checks on: munmap without shootdown vs write faults, bounded DFS (one preemption)';
    const res = exploreInTest(
      munmapQuietVsWriteFault(name, {}),
      { policy: 'dfs', bound: 1, runs: 2000 },
      name,
    );
    expect(res.failure).toBeNull();
    console.log(`[pervma dfs] ${res.runs} schedules, exhausted: ${res.exhausted}`);
  });
});
