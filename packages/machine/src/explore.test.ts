import { describe, expect, it } from 'vitest';
import { AtomicCell } from './cell.js';
import { cpuRelax } from './effects.js';
import { kassert, MachineConfigError } from './errors.js';
import {
  describeExploreFailure,
  type ExplorationRecord,
  explore,
  observeExplorations,
  parsePolicy,
  replaySchedule,
  runScenario,
  runTimed,
  type Scenario,
} from './explore.js';
import { Machine } from './machine.js';
import { DfsExplorer } from './policy/dfs.js';
import { pct } from './policy/pct.js';
import { random } from './policy/random.js';
import { timed } from './policy/timed.js';
import { ExplorationFailure, exploreInTest } from './testing.js';
import { mixSeed } from './prng.js';
import { abbaScenario, counterScenario, TestMutex } from './test-support/scenarios.js';

describe('exploring interleavings', () => {
  for (const policy of ['random', 'pct', 'dfs'] as const) {
    it(`${policy} finds the lost update of a non-atomic increment on 2 CPUs`, () => {
      const res = explore(counterScenario(false), { policy, runs: 500, seed: 3 });
      expect(res.failure).not.toBeNull();
      expect(res.failure?.kind).toBe('assertion');
      expect(res.failure?.message).toBe('counter is 1, expected 2');
    });
  }

  it('dfs proves the atomic increment correct within its preemption bound', () => {
    const res = explore(counterScenario(true, 2, 3), { policy: 'dfs', bound: 3 });
    expect(res.failure).toBeNull();
    expect(res.exhausted).toBe(true);
    expect(res.runs).toBeGreaterThan(10);
  });

  it('dfs with bound 0 explores only non-preemptive schedules and misses the lost update', () => {
    // Without a preemption, each task runs to completion before the other starts.
    const res = explore(counterScenario(false), { policy: 'dfs', bound: 0 });
    expect(res.failure).toBeNull();
    expect(res.exhausted).toBe(true);
  });

  it('replaying a failure schedule reproduces the same failure exactly', () => {
    const res = explore(counterScenario(false, 3, 2), { policy: 'random', runs: 500, seed: 11 });
    const f = res.failure!;
    expect(f).not.toBeNull();
    const again = replaySchedule(counterScenario(false, 3, 2), f.schedule);
    // Identical except for the policy's name and the host stack of the final check.
    expect({ ...again.failure, policy: f.policy, stack: f.stack }).toEqual(f);
    expect(again.failure?.policy).toBe('replay');
    // And twice more, with identical hashes.
    const a = replaySchedule(counterScenario(false, 3, 2), f.schedule);
    const b = replaySchedule(counterScenario(false, 3, 2), f.schedule);
    expect(a.traceHash).toBe(b.traceHash);
  });

  it('detects the deadlock of a lock-order inversion and says who holds what', () => {
    const res = explore(abbaScenario(), { policy: 'dfs', bound: 2 });
    expect(res.failure?.kind).toBe('deadlock');
    expect(res.failure?.message).toMatch(/T0 on CPU 0 sleeps on 'lock B' \(held by T1\)/);
    expect(res.failure?.message).toMatch(/T1 on CPU 1 sleeps on 'lock A' \(held by T0\)/);
    const again = replaySchedule(abbaScenario(), res.failure!.schedule);
    expect(again.failure?.kind).toBe('deadlock');
    // random and pct find it as well
    expect(explore(abbaScenario(), { policy: 'random', runs: 300 }).failure?.kind).toBe('deadlock');
    expect(explore(abbaScenario(), { policy: 'pct', runs: 300 }).failure?.kind).toBe('deadlock');
  });

  it('exploreInTest throws a report that carries the replay command', () => {
    let err: unknown;
    try {
      exploreInTest(counterScenario(false), { policy: 'pct', runs: 200 }, 'lost update');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ExplorationFailure);
    const msg = (err as Error).message;
    expect(msg).toMatch(/ASSERTION: counter is 1, expected 2/);
    expect(msg).toMatch(/SPF_REPLAY='s1:[0-9*,]+' npx vitest run -t "lost update"/);
    const schedule = /SPF_REPLAY='([^']+)'/.exec(msg)![1];
    expect(replaySchedule(counterScenario(false), schedule).failure?.kind).toBe('assertion');
  });

  it('the same configuration and seed give an identical trace hash under every policy', () => {
    const scenario = counterScenario(true, 4, 5);
    for (const make of [() => timed(), () => random(42), () => pct(42, 3, 40)]) {
      const a = runScenario(scenario, make());
      const b = runScenario(scenario, make());
      expect(a.ok).toBe(true);
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.schedule).toBe(a.schedule);
      // ...and the recorded schedule replays to the same hash.
      expect(replaySchedule(scenario, a.schedule).traceHash).toBe(a.traceHash);
    }
    // Different seeds explore different interleavings.
    const hashes = new Set([1, 2, 3, 4, 5].map((s) => runScenario(scenario, random(s)).traceHash));
    expect(hashes.size).toBeGreaterThan(1);
  });
});

describe('pct draws its change points inside short runs', () => {
  // The README's example: two CPUs each load and store a counter (a lost update of bug depth 2). Before pct's
  // run-length estimate followed the scenario, it stayed at 100 steps for this 8-step program, so nearly every
  // change point fell after the run had ended and 100 schedules found nothing.
  it('finds the README example lost update within 100 schedules, as the README promises', () => {
    const result = explore(
      {
        cpus: 2,
        setup(m) {
          const counter = new AtomicCell(0, 'counter');
          for (let cpu = 0; cpu < 2; cpu++) {
            m.spawn(cpu, `inc${cpu}`, function* () {
              const v = yield* counter.load();
              yield* counter.store(v + 1);
            });
          }
          return () => kassert(counter.value === 2, `counter is ${counter.value}`);
        },
      },
      { policy: 'pct', runs: 100 },
    );
    expect(result.failure?.message).toBe('counter is 1');
  });
});

/** Two CPUs take one sleeping mutex in turn: how many steps a run takes depends on the interleaving. */
function mutexScenario(onSetup: () => void = () => {}): Scenario {
  return {
    name: 'mutex',
    cpus: 2,
    setup(m) {
      onSetup();
      const mutex = new TestMutex('mutex');
      for (let cpu = 0; cpu < 2; cpu++) {
        m.spawn(cpu, `t${cpu}`, function* () {
          yield* mutex.lock(`t${cpu}`);
          yield* mutex.unlock();
        });
      }
    },
  };
}

describe('explore(): budgets, defaults and what it reports', () => {
  it('random and pct run exactly `runs` schedules, default 1000, and report the longest', () => {
    for (const policy of ['random', 'pct'] as const) {
      // The runs one by one: run r uses the seed mixSeed(seed, r); pct estimates the run length from the
      // longest run so far (100 before the first).
      const steps: number[] = [];
      let estimate = 100;
      for (let r = 0; r < 40; r++) {
        const p = policy === 'random' ? random(mixSeed(5, r)) : pct(mixSeed(5, r), 3, estimate);
        steps.push(runScenario(mutexScenario(), p).steps);
        estimate = Math.max(...steps);
      }
      // A budget whose last run is not its longest, so that the longest must be remembered.
      let n = 40;
      while (n > 1 && steps[n - 1] === Math.max(...steps.slice(0, n))) n--;
      expect(n).toBeGreaterThan(1);
      let setups = 0;
      const res = explore(
        mutexScenario(() => setups++),
        { policy, runs: n, seed: 5 },
      );
      expect(res).toMatchObject({ runs: n, exhausted: false, failure: null });
      expect(setups).toBe(n);
      expect(res.maxSteps).toBe(Math.max(...steps.slice(0, n)));
    }
    let setups = 0;
    const dflt = explore(
      mutexScenario(() => setups++),
      { policy: 'random' },
    );
    expect(dflt.runs).toBe(1000);
    expect(setups).toBe(1000);
    expect(dflt.policy).toBe('random(seed=1)');
  });

  it('names the policy with its seed and depth (depth 3 unless given)', () => {
    const s = counterScenario(true);
    expect(explore(s, { policy: 'random', runs: 2, seed: 7 }).policy).toBe('random(seed=7)');
    expect(explore(s, { policy: 'pct', runs: 2, seed: 7 }).policy).toBe('pct(seed=7,depth=3)');
    expect(explore(s, { policy: 'pct', runs: 2, seed: 7, depth: 1 }).policy).toBe('pct(seed=7,depth=1)');
    expect(explore(s, { policy: 'dfs', runs: 2 }).policy).toBe('dfs(bound=2)');
    expect(explore(s, { policy: 'dfs', runs: 2, bound: 1 }).policy).toBe('dfs(bound=1)');
  });

  it('reports the failing run: which one, under which seed, not exhausted', () => {
    for (const policy of ['random', 'pct'] as const) {
      const res = explore(counterScenario(false, 3, 2), { policy, runs: 500, seed: 11, depth: 2 });
      expect(res.failure).not.toBeNull();
      expect(res.exhausted).toBe(false);
      // Run `res.runs` (counted from 1) is the first that fails, with the same schedule as explore found.
      let estimate = 100;
      let max = 0;
      for (let r = 0; r < res.runs; r++) {
        const p = policy === 'random' ? random(mixSeed(11, r)) : pct(mixSeed(11, r), 2, estimate);
        const one = runScenario(counterScenario(false, 3, 2), p);
        max = Math.max(max, one.steps);
        estimate = max;
        if (r < res.runs - 1) expect(one.failure).toBeNull();
        else expect(one.failure?.schedule).toBe(res.failure?.schedule);
      }
      expect(res.maxSteps).toBe(max);
      expect(res.policy).toBe(policy === 'random' ? 'random(seed=11)' : 'pct(seed=11,depth=2)');
    }
    const dfs = explore(counterScenario(false), { policy: 'dfs', bound: 1 });
    expect(dfs.failure).not.toBeNull();
    expect(dfs.exhausted).toBe(false);
    expect(dfs.policy).toBe('dfs(bound=1)');
    expect(dfs.maxSteps).toBeGreaterThan(0);
  });

  it('dfs stops at its runs budget without claiming exhaustion, and otherwise explores the whole bounded tree', () => {
    const all = explore(mutexScenario(), { policy: 'dfs', bound: 2 });
    expect(all.exhausted).toBe(true);
    expect(all.policy).toBe('dfs(bound=2)');
    expect(all.failure).toBeNull();
    const budget = explore(mutexScenario(), { policy: 'dfs', bound: 2, runs: 5 });
    expect(budget).toMatchObject({ runs: 5, exhausted: false, failure: null, policy: 'dfs(bound=2)' });
    const exact = explore(mutexScenario(), { policy: 'dfs', bound: 2, runs: all.runs });
    expect(exact.runs).toBe(all.runs);
    // The longest of every run in the tree, replayed one by one.
    const ex = new DfsExplorer(2);
    const steps: number[] = [];
    for (let p = ex.nextRun(); p !== null; p = ex.nextRun())
      steps.push(runScenario(mutexScenario(), p).steps);
    expect(steps.length).toBe(all.runs);
    expect(new Set(steps).size).toBeGreaterThan(1);
    expect(steps[steps.length - 1]).toBeLessThan(Math.max(...steps));
    expect(all.maxSteps).toBe(Math.max(...steps));
  });

  it('dfs has no 1000-schedule default budget (random and pct do)', () => {
    const res = explore(counterScenario(true, 4, 2), { policy: 'dfs', bound: 2 });
    expect(res.exhausted).toBe(true);
    expect(res.runs).toBe(2424);
  });

  it('rejects bad options and scenarios with typed errors', () => {
    const s = counterScenario(true);
    for (const runs of [0, -1, 1.5]) {
      expect(() => explore(s, { policy: 'random', runs })).toThrow(
        new MachineConfigError(`runs must be a positive integer, got ${runs}`),
      );
    }
    expect(explore(s, { policy: 'random', runs: 1 }).runs).toBe(1);
    expect(() => explore(s, { policy: 'bfs' as 'dfs' })).toThrow(
      new MachineConfigError(`unknown exploration policy "bfs"; use 'random', 'pct' or 'dfs'`),
    );
    const noSetup = new MachineConfigError('a scenario needs `cpus` and a `setup(machine)` function');
    expect(() => explore({ cpus: 2 } as unknown as Scenario, { policy: 'random' })).toThrow(noSetup);
    expect(() => explore(null as unknown as Scenario, { policy: 'random' })).toThrow(noSetup);
    expect(() => runScenario({ cpus: 2 } as unknown as Scenario, timed())).toThrow(noSetup);
  });
});

describe('runScenario(): the machine it builds', () => {
  /** One CPU spinning forever: only the step limit ends it. */
  const spinner = (maxSteps?: number): Scenario => ({
    cpus: 1,
    maxSteps,
    setup(m) {
      m.spawn(0, 'spin', function* () {
        for (;;) yield* cpuRelax();
      });
    },
  });

  it('passes the scenario seed to the machine (default 0)', () => {
    const s = counterScenario(true, 4, 5);
    const zero = runScenario(s, timed());
    expect(runScenario({ ...s, machineSeed: 0 }, timed()).traceHash).toBe(zero.traceHash);
    const seeded = runScenario({ ...s, machineSeed: 9 }, timed());
    expect(seeded.traceHash).not.toBe(zero.traceHash);
    const m = new Machine({ cpus: 4, seed: 9, policy: timed(), maxSteps: 1_000_000 });
    s.setup(m);
    expect(m.run().traceHash).toBe(seeded.traceHash);
  });

  it('stops a run at the scenario step limit, 1,000,000 by default', () => {
    const short = runScenario(spinner(50), random(1));
    expect(short.failure?.kind).toBe('step-limit');
    expect(short.steps).toBe(50);
    const dflt = runScenario(spinner(), timed());
    expect(dflt.failure?.message).toMatch(/^no end after 1000000 steps/);
    expect(dflt.steps).toBe(1_000_000);
  });

  it('records a trace only when asked', () => {
    const s = counterScenario(true);
    expect(runScenario(s, timed()).trace).toBe(null);
    expect(runScenario(s, timed(), { trace: false }).trace).toBe(null);
    const traced = runScenario(s, timed(), { trace: true });
    expect(traced.trace?.length).toBeGreaterThan(0);
    expect(runTimed(s, { trace: true }).trace).toEqual(traced.trace);
    expect(replaySchedule(s, traced.schedule, { trace: true }).trace?.length).toBe(traced.trace?.length);
  });

  it('runTimed is the scenario under the timed policy', () => {
    const s = counterScenario(true, 4, 3);
    const a = runTimed(s);
    const b = runScenario(s, timed());
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.schedule).toBe(b.schedule);
    expect(a.time).toBe(b.time);
  });
});

describe('observeExplorations', () => {
  it('tells each listener about every explore() until it stops listening', () => {
    const seen: ExplorationRecord[] = [];
    const stop = observeExplorations((r) => seen.push(r));
    const before = performance.now();
    const res = explore(counterScenario(true), { policy: 'random', runs: 3 });
    const took = performance.now() - before;
    expect(seen).toHaveLength(1);
    expect(seen[0].scenario).toBe('atomic increment');
    expect(seen[0].options).toEqual({ policy: 'random', runs: 3 });
    expect(seen[0].result).toBe(res);
    expect(seen[0].hostMs).toBeGreaterThanOrEqual(0);
    expect(seen[0].hostMs).toBeLessThanOrEqual(took);
    stop();
    explore(counterScenario(true), { policy: 'random', runs: 3 });
    expect(seen).toHaveLength(1);
  });
});

describe('parsePolicy', () => {
  it('parses each policy named on a command line, with its defaults', () => {
    expect(parsePolicy('timed').name).toBe('timed');
    expect(parsePolicy('random').name).toBe(random(1).name);
    expect(parsePolicy('random:').name).toBe(random(1).name);
    expect(parsePolicy('random:42').name).toBe(random(42).name);
    expect(parsePolicy('pct').name).toBe(pct(1, 3).name);
    expect(parsePolicy('pct:9').name).toBe(pct(9, 3).name);
    expect(parsePolicy('pct:9:5').name).toBe(pct(9, 5).name);
    expect(parsePolicy('pct::5').name).toBe(pct(1, 5).name);
    // A replayed schedule keeps its colons.
    const s = counterScenario(true, 3, 2);
    const run = runScenario(s, random(3));
    expect(run.schedule).toContain(':');
    expect(runScenario(s, parsePolicy(`replay:${run.schedule}`)).traceHash).toBe(run.traceHash);
    // ...and a policy parsed twice runs the same schedule.
    expect(runScenario(s, parsePolicy('pct:4:2')).traceHash).toBe(runScenario(s, pct(4, 2)).traceHash);
    expect(runScenario(s, parsePolicy('random:4')).traceHash).toBe(runScenario(s, random(4)).traceHash);
  });

  it('rejects unknown policies and numbers that are not non-negative integers', () => {
    expect(() => parsePolicy('dfs')).toThrow(
      new MachineConfigError(
        "unknown policy 'dfs'; use timed, random:<seed>, pct:<seed>[:<depth>] or replay:<schedule>",
      ),
    );
    expect(() => parsePolicy('')).toThrow(MachineConfigError);
    for (const [spec, what, bad] of [
      ['random:-1', 'the seed', '-1'],
      ['random:1.5', 'the seed', '1.5'],
      ['random:x7', 'the seed', 'x7'],
      ['random:7x', 'the seed', '7x'],
      ['pct:3:two', 'the depth', 'two'],
      ['pct:x', 'the seed', 'x'],
    ]) {
      expect(() => parsePolicy(spec)).toThrow(
        new MachineConfigError(`${what} in policy '${spec}' must be a non-negative integer, got '${bad}'`),
      );
    }
  });
});

describe('describeExploreFailure', () => {
  it('says how many schedules ran when none failed, and reports the failure otherwise', () => {
    const ok = explore(counterScenario(true), { policy: 'random', runs: 4 });
    expect(describeExploreFailure(ok)).toBe('no failure in 4 schedules (random(seed=1))');
    const bad = explore(counterScenario(false), { policy: 'random', runs: 500 });
    const text = describeExploreFailure(bad, 'HINT');
    expect(text.startsWith(`random(seed=1) found a failure after ${bad.runs} schedule(s):\n`)).toBe(true);
    expect(text).toContain('counter is 1, expected 2');
    expect(text).toContain('HINT');
  });
});
