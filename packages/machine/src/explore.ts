import type { CostModel } from './cost-model.js';
import { MachineConfigError } from './errors.js';
import { type FailureReport, formatFailure } from './failure.js';
import { Machine, type RunResult } from './machine.js';
import { DfsExplorer } from './policy/dfs.js';
import { pct } from './policy/pct.js';
import type { Policy } from './policy/policy.js';
import { checkSeed, random } from './policy/random.js';
import { replay } from './policy/replay.js';
import { timed } from './policy/timed.js';
import { mixSeed } from './prng.js';

/**
 * A concurrent test program: how many CPUs, and a `setup` that builds fresh kernel objects on a new machine
 * and spawns the tasks. `setup` may return a final check that runs after every task finished (throw, or
 * use `kassert`, to fail). It is called once per explored schedule, so it must not share mutable state
 * between calls.
 */
export type Scenario = {
  readonly name?: string;
  readonly cpus: number;
  readonly setup: (m: Machine) => void | (() => void);
  readonly cost?: Partial<CostModel>;
  readonly sockets?: 1 | 2;
  readonly maxSteps?: number;
  /** Seed passed to the machine (not the exploration seed; it varies timed runs); default 0. */
  readonly machineSeed?: number;
};

/** How to explore a scenario. */
export type ExploreOptions = {
  readonly policy: 'random' | 'pct' | 'dfs';
  /** Exploration seed for random and pct; default 1. */
  readonly seed?: number;
  /** Schedules to try for random and pct (default 1000); an upper limit for dfs (default 1e6). */
  readonly runs?: number;
  /** pct bug depth (default 3). */
  readonly depth?: number;
  /** dfs preemption bound (default 2). */
  readonly bound?: number;
};

/** The outcome of an exploration. */
export type ExploreResult = {
  readonly policy: string;
  /** Schedules run. */
  readonly runs: number;
  /** For dfs: every schedule within the bound was explored. */
  readonly exhausted: boolean;
  /** The first failing run, or null. */
  readonly failure: FailureReport | null;
  /** Steps of the longest run. */
  readonly maxSteps: number;
};

/** Runs a scenario once under a given policy. */
export function runScenario(scenario: Scenario, policy: Policy, opts: { trace?: boolean } = {}): RunResult {
  checkScenario(scenario);
  const m = new Machine({
    cpus: scenario.cpus,
    seed: scenario.machineSeed ?? 0,
    policy,
    cost: scenario.cost,
    sockets: scenario.sockets,
    maxSteps: scenario.maxSteps ?? 1_000_000,
    trace: opts.trace ?? false,
  });
  const check = scenario.setup(m);
  if (typeof check === 'function') m.atEnd(check);
  return m.run();
}

/** Runs a scenario under the timed policy (as a benchmark would). */
export function runTimed(scenario: Scenario, opts: { trace?: boolean } = {}): RunResult {
  return runScenario(scenario, timed(), opts);
}

/** Replays one schedule of a scenario, for example from a failure report; use `trace` to draw it. */
export function replaySchedule(
  scenario: Scenario,
  schedule: string,
  opts: { trace?: boolean } = {},
): RunResult {
  return runScenario(scenario, replay(schedule), opts);
}

/**
 * Explores interleavings of a scenario and returns the first failure (with its replayable schedule), or
 * none. random and pct try `runs` seeded schedules; dfs enumerates every schedule within the preemption
 * bound (reporting `exhausted`), which proves the absence of bugs reachable within that many preemptions.
 */
export function explore(scenario: Scenario, opts: ExploreOptions): ExploreResult {
  if (observers.size === 0) return exploreRuns(scenario, opts);
  const t0 = performance.now();
  const result = exploreRuns(scenario, opts);
  const record: ExplorationRecord = {
    scenario: scenario.name,
    options: opts,
    result,
    hostMs: performance.now() - t0,
  };
  for (const o of observers) o(record);
  return result;
}

/** One finished {@link explore} call, as {@link observeExplorations} listeners receive it. */
export type ExplorationRecord = {
  readonly scenario: string | undefined;
  readonly options: ExploreOptions;
  readonly result: ExploreResult;
  /** Host milliseconds the exploration took. */
  readonly hostMs: number;
};

const observers = new Set<(record: ExplorationRecord) => void>();

/**
 * Calls `listener` after every {@link explore} (and so every `exploreInTest`) in this module instance, with
 * its result and host time; returns a function that stops it. For benchmarks that time how long the
 * existing tests' explorations take to find their seeded races (`bench/explorer.ts`); nothing else changes.
 */
export function observeExplorations(listener: (record: ExplorationRecord) => void): () => void {
  observers.add(listener);
  return () => {
    observers.delete(listener);
  };
}

function exploreRuns(scenario: Scenario, opts: ExploreOptions): ExploreResult {
  checkScenario(scenario);
  const seed = opts.seed ?? 1;
  checkSeed(seed);
  const runs = opts.runs ?? (opts.policy === 'dfs' ? 1_000_000 : 1000);
  if (!Number.isInteger(runs) || runs < 1)
    throw new MachineConfigError(`runs must be a positive integer, got ${runs}`);
  let maxSteps = 0;
  if (opts.policy === 'random' || opts.policy === 'pct') {
    const depth = opts.depth ?? 3;
    let estimate = 100;
    let name = '';
    for (let r = 0; r < runs; r++) {
      const s = mixSeed(seed, r);
      const p = opts.policy === 'random' ? random(s) : pct(s, depth, estimate);
      name = opts.policy === 'random' ? `random(seed=${seed})` : `pct(seed=${seed},depth=${depth})`;
      const res = runScenario(scenario, p);
      if (res.steps > maxSteps) maxSteps = res.steps;
      // PCT draws its change points from the run's length (k in Burckhardt et al.): after the first run, the
      // longest run seen so far, so that short scenarios get change points inside the run.
      estimate = maxSteps;
      if (res.failure) return { policy: name, runs: r + 1, exhausted: false, failure: res.failure, maxSteps };
    }
    return { policy: name, runs, exhausted: false, failure: null, maxSteps };
  }
  if (opts.policy === 'dfs') {
    const dfs = new DfsExplorer(opts.bound ?? 2);
    for (;;) {
      if (dfs.runs >= runs)
        return {
          policy: `dfs(bound=${dfs.bound})`,
          runs: dfs.runs,
          exhausted: false,
          failure: null,
          maxSteps,
        };
      const p = dfs.nextRun();
      if (p === null)
        return {
          policy: `dfs(bound=${dfs.bound})`,
          runs: dfs.runs,
          exhausted: true,
          failure: null,
          maxSteps,
        };
      const res = runScenario(scenario, p);
      if (res.steps > maxSteps) maxSteps = res.steps;
      if (res.failure)
        return { policy: p.name, runs: dfs.runs, exhausted: false, failure: res.failure, maxSteps };
    }
  }
  throw new MachineConfigError(
    `unknown exploration policy ${JSON.stringify(opts.policy)}; use 'random', 'pct' or 'dfs'`,
  );
}

function checkScenario(s: Scenario): void {
  if (!s || typeof s.setup !== 'function') {
    throw new MachineConfigError('a scenario needs `cpus` and a `setup(machine)` function');
  }
}

/**
 * Parses a policy named on a command line: `timed`, `random:<seed>`, `pct:<seed>[:<depth>]`,
 * `replay:<schedule>`. (`dfs` explores many runs; use {@link explore}.)
 */
export function parsePolicy(spec: string): Policy {
  const [kind, ...rest] = spec.split(':');
  const int = (s: string | undefined, what: string, dflt: number) => {
    if (s === undefined || s === '') return dflt;
    if (!/^\d+$/.test(s))
      throw new MachineConfigError(`${what} in policy '${spec}' must be a non-negative integer, got '${s}'`);
    return Number(s);
  };
  switch (kind) {
    case 'timed':
      return timed();
    case 'random':
      return random(int(rest[0], 'the seed', 1));
    case 'pct':
      return pct(int(rest[0], 'the seed', 1), int(rest[1], 'the depth', 3));
    case 'replay':
      return replay(rest.join(':'));
    default:
      throw new MachineConfigError(
        `unknown policy '${spec}'; use timed, random:<seed>, pct:<seed>[:<depth>] or replay:<schedule>`,
      );
  }
}

/** Formats an exploration failure with the command that replays it. */
export function describeExploreFailure(res: ExploreResult, replayHint?: string): string {
  if (!res.failure) return `no failure in ${res.runs} schedules (${res.policy})`;
  return `${res.policy} found a failure after ${res.runs} schedule(s):\n${formatFailure(res.failure, { replayHint })}`;
}
