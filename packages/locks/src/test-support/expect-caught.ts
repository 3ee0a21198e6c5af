import {
  type ExploreOptions,
  explore,
  exploreInTest,
  type FailureReport,
  replaySchedule,
  type Scenario,
} from '@spf/machine';
import { expect } from 'vitest';

/**
 * Asserts that exploring `scenario` finds a failure of `kind`, and that replaying the report's schedule
 * reproduces the same failure (same kind, message, CPU and step). Returns the report.
 */
export function expectCaught(scenario: Scenario, opts: ExploreOptions, kind: string): FailureReport {
  const res = explore(scenario, opts);
  expect(res.failure, `${res.policy} found nothing in ${res.runs} runs`).not.toBeNull();
  const f = res.failure!;
  expect(f.kind, f.message).toBe(kind);
  const again = replaySchedule(scenario, f.schedule);
  expect(again.failure).not.toBeNull();
  expect(again.failure!.kind).toBe(f.kind);
  expect(again.failure!.message).toBe(f.message);
  expect(again.failure!.cpu).toBe(f.cpu);
  expect(again.failure!.step).toBe(f.step);
  return f;
}

/** Default exploration budgets for the primitives' tests (kept small: two shared cores). */
export const budgets = {
  random: { policy: 'random', runs: 300, seed: 7 },
  pct: { policy: 'pct', runs: 300, seed: 11, depth: 3 },
  dfs: { policy: 'dfs', bound: 2, runs: 3000 },
} as const satisfies Record<string, ExploreOptions>;

/** Explores `scenario` under random, pct and bounded dfs; any failure throws with a replay command. */
export function exploreAll(scenario: Scenario, testName: string, only?: Array<keyof typeof budgets>): void {
  for (const k of only ?? (['random', 'pct', 'dfs'] as const)) {
    const res = exploreInTest(scenario, budgets[k], testName);
    expect(res.failure).toBeNull();
  }
}
