import { describe, expect, it } from 'vitest';
import { runScenario, type Scenario } from './explore.js';
import type { FailureReport } from './failure.js';
import type { RunResult } from './machine.js';
import { DfsExplorer } from './policy/dfs.js';
import { pct } from './policy/pct.js';
import type { Policy } from './policy/policy.js';
import { random } from './policy/random.js';
import { replay } from './policy/replay.js';
import { timed } from './policy/timed.js';
import { policyFingerprints, runFingerprint } from './policy-fingerprint.js';
import { counterScenario } from './test-support/scenarios.js';

/**
 * The fingerprint lines that tests keep for fixed programs (trace-hash.test.ts) so that an engine change that
 * claims to change nothing can prove it. What matters to their users: each line is the stated digest of the
 * stated runs, so a kept line means the same thing in every version, and any change in what a run did, when,
 * or in which order changes the line.
 */

/** The standard 32-bit FNV-1a hash, as eight hex digits (what the lines call a hash). */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
const hex = (n: number) => n.toString(16).padStart(8, '0');

/** A run result with every field given, so that one field at a time can be varied. */
function result(over: Partial<RunResult> = {}): RunResult {
  return {
    ok: true,
    failure: null,
    steps: 12,
    time: 345,
    clocks: [345, 300],
    schedule: 's1:0,1',
    traceHash: 'deadbeef',
    trace: null,
    effects: 12,
    spinsSkipped: 0,
    ...over,
  };
}

function failure(over: Partial<FailureReport> = {}): FailureReport {
  return {
    kind: 'assertion',
    message: 'counter is 1, expected 2',
    cpu: -1,
    task: null,
    step: 9,
    time: 250,
    policy: 'replay',
    seed: 0,
    schedule: 's1:0,1',
    cpus: [],
    lastEvents: [],
    stack: 'at check (a.ts:1:1)',
    ...over,
  };
}

describe('runFingerprint', () => {
  it('is the trace hash, end time, step count, FNV-1a of the schedule and "ok" for a run that passed', () => {
    expect(runFingerprint(result())).toBe(`deadbeef t=345 steps=12 sched=${hex(fnv1a('s1:0,1'))} ok`);
  });

  it('hashes the schedule with the standard FNV-1a (published test vectors), always as eight hex digits', () => {
    const sched = (schedule: string) => /sched=(\S+)/.exec(runFingerprint(result({ schedule })))![1];
    expect(sched('')).toBe('811c9dc5');
    expect(sched('a')).toBe('e40c292c');
    expect(sched('foobar')).toBe('bf9cf968');
    // A hash below 2^28 keeps its leading zero.
    expect(sched('s0')).toBe('0751b736');
  });

  it('changes with each part of the run it digests', () => {
    const base = runFingerprint(result());
    for (const over of [
      { traceHash: 'deadbeee' },
      { time: 346 },
      { steps: 13 },
      { schedule: 's1:1,0' },
      { failure: failure() },
    ]) {
      expect(runFingerprint(result(over))).not.toBe(base);
    }
    // What it leaves out does not change it: the per-CPU clocks beyond the end time, the effect counts.
    expect(runFingerprint(result({ clocks: [345, 345], effects: 99, spinsSkipped: 7 }))).toBe(base);
  });

  it('for a failed run gives the failure’s kind, step, time and a hash of its message, never its stack', () => {
    const f = failure();
    const line = runFingerprint(result({ ok: false, failure: f }));
    expect(line).toBe(
      `deadbeef t=345 steps=12 sched=${hex(fnv1a('s1:0,1'))} assertion@9 t=250 msg=${hex(fnv1a(f.message))}`,
    );
    // The stack names host source lines, which move when the engine's code is reorganised.
    expect(runFingerprint(result({ ok: false, failure: failure({ stack: 'at other (b.ts:9:9)' }) }))).toBe(
      line,
    );
    for (const over of [{ kind: 'deadlock' }, { step: 10 }, { time: 251 }, { message: 'counter is 0' }]) {
      expect(runFingerprint(result({ ok: false, failure: failure(over) }))).not.toBe(line);
    }
  });
});

describe('policyFingerprints', () => {
  const lostUpdate = counterScenario(false, 2, 2);
  const runWith = (s: Scenario) => (p: Policy) => runScenario(s, p);

  it('gives one line per policy: timed, random(7), pct(7, depth 3) and its replay', () => {
    const got = policyFingerprints(runWith(lostUpdate));
    expect(Object.keys(got).sort()).toEqual(['dfs', 'pct', 'random', 'replay', 'timed']);
    expect(got.timed).toBe(runFingerprint(runScenario(lostUpdate, timed())));
    expect(got.random).toBe(runFingerprint(runScenario(lostUpdate, random(7))));
    const pctRun = runScenario(lostUpdate, pct(7, 3, 200));
    expect(got.pct).toBe(runFingerprint(pctRun));
    expect(got.replay).toBe(runFingerprint(runScenario(lostUpdate, replay(pctRun.schedule))));
    // A replay of the pct run reads exactly like it.
    expect(got.replay).toBe(got.pct);
  });

  it('seed and depth choose the random and pct runs', () => {
    // pct draws depth - 1 change points over 200 steps; this short program sees some only at a large depth.
    const got = policyFingerprints(runWith(lostUpdate), { seed: 3, depth: 30 });
    expect(got.random).toBe(runFingerprint(runScenario(lostUpdate, random(3))));
    expect(got.pct).toBe(runFingerprint(runScenario(lostUpdate, pct(3, 30, 200))));
    expect(got.replay).toBe(got.pct);
    expect(got.random).not.toBe(policyFingerprints(runWith(lostUpdate)).random);
    expect(got.pct).not.toBe(policyFingerprints(runWith(lostUpdate), { seed: 3 }).pct);
  });

  /** The dfs line computed from its definition: the first `max` schedules at `bound`, digested in order. */
  function dfsLine(s: Scenario, bound: number, max: number): string {
    const dfs = new DfsExplorer(bound);
    let digest = 0x811c9dc5;
    let runs = 0;
    for (let p = dfs.nextRun(); p !== null && runs < max; p = dfs.nextRun()) {
      digest = fnv1a(runFingerprint(runScenario(s, p)), digest);
      runs++;
    }
    return `${runs} runs ${hex(digest)}`;
  }

  it('digests the first 12 dfs schedules at preemption bound 1 by default', () => {
    // Three CPUs with two increments each have far more than 12 schedules at bound 1.
    const big = counterScenario(false, 3, 2);
    const got = policyFingerprints(runWith(big));
    expect(got.dfs).toMatch(/^12 runs [0-9a-f]{8}$/);
    expect(got.dfs).toBe(dfsLine(big, 1, 12));
  });

  it('bound and dfsRuns choose the dfs runs; an exploration that ends sooner digests every schedule it has', () => {
    const got = policyFingerprints(runWith(lostUpdate), { bound: 0, dfsRuns: 3 });
    expect(got.dfs).toBe(dfsLine(lostUpdate, 0, 3));
    // One task per CPU running one load and one store each: bound 0 has only the two non-preemptive orders.
    const small = counterScenario(false, 2, 1);
    const all = policyFingerprints(runWith(small), { bound: 0 });
    expect(all.dfs).toBe(dfsLine(small, 0, 100));
    expect(all.dfs).toMatch(/^2 runs /);
    expect(policyFingerprints(runWith(lostUpdate), { dfsRuns: 5 }).dfs).toBe(dfsLine(lostUpdate, 1, 5));
  });

  it('tells a program that changes from one that does not', () => {
    const a = policyFingerprints(runWith(lostUpdate));
    const b = policyFingerprints(runWith(counterScenario(true, 2, 2)));
    for (const k of ['timed', 'random', 'pct', 'dfs', 'replay'] as const) expect(b[k]).not.toBe(a[k]);
    expect(policyFingerprints(runWith(lostUpdate))).toEqual(a);
  });
});
