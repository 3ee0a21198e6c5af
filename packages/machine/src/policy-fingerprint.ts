import type { FailureReport } from './failure.js';
import type { RunResult } from './machine.js';
import { DfsExplorer } from './policy/dfs.js';
import { pct } from './policy/pct.js';
import type { Policy } from './policy/policy.js';
import { random } from './policy/random.js';
import { replay } from './policy/replay.js';
import { timed } from './policy/timed.js';

/** Options of {@link policyFingerprints}. */
export type FingerprintOptions = {
  /** Seed of the random and pct runs (default 7). */
  readonly seed?: number;
  /** pct bug depth (default 3). */
  readonly depth?: number;
  /** dfs preemption bound (default 1). */
  readonly bound?: number;
  /** How many dfs schedules to run at most (default 12). */
  readonly dfsRuns?: number;
};

/**
 * What one run of a program looked like from outside, under each policy: one line per policy
 * (`timed`, `random`, `pct`, `dfs`, `replay`) holding the trace hash, the simulated end time, the number of
 * steps, a hash of the schedule string and, when the run failed, the failure's kind, step and a hash of its
 * message. dfs runs the first `dfsRuns` schedules of a bounded exploration and digests all of them;
 * `replay` replays the pct run's schedule and must read exactly like the pct line.
 *
 * Tests keep these lines for fixed programs so that an engine change that claims to change nothing (a host
 * speed-up, a refactoring) can prove it: any change in what a run did, when, or in which order changes a line.
 *
 * `runWith` runs the program once on a fresh machine under the given policy.
 */
export function policyFingerprints(
  runWith: (policy: Policy) => RunResult,
  opts: FingerprintOptions = {},
): Record<'timed' | 'random' | 'pct' | 'dfs' | 'replay', string> {
  const seed = opts.seed ?? 7;
  const pctRun = runWith(pct(seed, opts.depth ?? 3, 200));
  const dfs = new DfsExplorer(opts.bound ?? 1);
  const maxRuns = opts.dfsRuns ?? 12;
  let digest = 0x811c9dc5;
  let runs = 0;
  for (let p = dfs.nextRun(); p !== null && runs < maxRuns; p = dfs.nextRun()) {
    digest = fnv1a(runFingerprint(runWith(p)), digest);
    runs++;
  }
  return {
    timed: runFingerprint(runWith(timed())),
    random: runFingerprint(runWith(random(seed))),
    pct: runFingerprint(pctRun),
    dfs: `${runs} runs ${hex(digest)}`,
    replay: runFingerprint(runWith(replay(pctRun.schedule))),
  };
}

/** The fingerprint line of one run (see {@link policyFingerprints}). */
export function runFingerprint(r: RunResult): string {
  return `${r.traceHash} t=${r.time} steps=${r.steps} sched=${hex(fnv1a(r.schedule))} ${failureFingerprint(r.failure)}`;
}

function failureFingerprint(f: FailureReport | null): string {
  // The stack is left out: it names host source lines, which move when the engine's code is reorganised.
  return f === null ? 'ok' : `${f.kind}@${f.step} t=${f.time} msg=${hex(fnv1a(f.message))}`;
}

function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
