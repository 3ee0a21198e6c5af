import { afterEach, describe, expect, it, vi } from 'vitest';
import { explore, replaySchedule, runScenario } from './explore.js';
import { timed } from './policy/timed.js';
import { counterScenario } from './test-support/scenarios.js';
import { ExplorationFailure, exploreInTest, REPLAY_ENV } from './testing.js';

/**
 * exploreInTest as a test author uses it: a failing exploration throws an ExplorationFailure whose message
 * carries the report and the command that replays the failing schedule, and running that command (the
 * SPF_REPLAY variable) replays exactly that schedule instead of exploring.
 */

afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

/** Runs `f`, which must throw, and returns what it threw. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** A lost-update scenario without a name (counterScenario names its scenarios). */
const unnamed = () => ({ ...counterScenario(false), name: undefined });

describe('exploreInTest', () => {
  it('returns the exploration when no schedule fails', () => {
    const res = exploreInTest(counterScenario(true), { policy: 'dfs', bound: 2 });
    expect(res.failure).toBeNull();
    expect(res.policy).toBe('dfs(bound=2)');
    expect(res.exhausted).toBe(true);
    expect(res).toEqual(explore(counterScenario(true), { policy: 'dfs', bound: 2 }));
  });

  it('throws an ExplorationFailure with the report and a replay command naming the test', () => {
    const err = thrown(() =>
      exploreInTest(counterScenario(false), { policy: 'random', runs: 50 }, 'lost update'),
    );
    expect(err).toBeInstanceOf(ExplorationFailure);
    expect(err).toBeInstanceOf(Error);
    const e = err as ExplorationFailure;
    expect(e.name).toBe('ExplorationFailure');
    expect(String(e)).toMatch(
      /^ExplorationFailure: random\(seed=1\) found a failure after \d+ schedule\(s\):\nASSERTION: /,
    );
    expect(e.message).toMatch(/ASSERTION: counter is 1, expected 2/);
    const found = explore(counterScenario(false), { policy: 'random', runs: 50 }).failure!;
    expect(e.message).toContain(
      `  replay: ${REPLAY_ENV}='${found.schedule}' npx vitest run -t "lost update"`,
    );
  });

  it('names the scenario in the command when no test name is given, and says where the name goes without one', () => {
    const named = thrown(() => exploreInTest(counterScenario(false), { policy: 'dfs' })) as Error;
    expect(named.message).toMatch(/SPF_REPLAY='[^']+' npx vitest run -t "non-atomic increment"$/m);
    const anonymous = thrown(() => exploreInTest(unnamed(), { policy: 'dfs' })) as Error;
    expect(anonymous.message).toMatch(/SPF_REPLAY='[^']+' npx vitest run -t "<test name>"$/m);
  });

  it('with SPF_REPLAY set replays that schedule once instead of exploring, and reports its failure', () => {
    const schedule = explore(counterScenario(false), { policy: 'dfs' }).failure!.schedule;
    vi.stubEnv(REPLAY_ENV, schedule);
    const e = thrown(() =>
      exploreInTest(counterScenario(false), { policy: 'random', runs: 1, seed: 99 }, 'lost update'),
    ) as ExplorationFailure;
    expect(e).toBeInstanceOf(ExplorationFailure);
    expect(e.message).toMatch(/^replayed schedule failed:\nASSERTION: counter is 1, expected 2\n/);
    expect(e.message).toMatch(/\(policy replay, seed 0\)/);
    expect(e.message).toContain(`  schedule: ${schedule}`);
  });

  it('a replayed failure lists every step of the run and carries its trace, so it can be stepped through', () => {
    const schedule = explore(counterScenario(false), { policy: 'dfs' }).failure!.schedule;
    const traced = replaySchedule(counterScenario(false), schedule, { trace: true });
    const trace = traced.trace!;
    expect(trace.length).toBeGreaterThan(4);
    vi.stubEnv(REPLAY_ENV, schedule);
    const e = thrown(() => exploreInTest(counterScenario(false), { policy: 'dfs' })) as ExplorationFailure;
    expect(e.trace).toEqual(trace);
    const lines = e.message.split('\n');
    const at = lines.indexOf(`  trace (${trace.length} steps):`);
    expect(at).toBeGreaterThan(0);
    // One line per step, in order: the two loads of the counter and then the two stores that lose an update.
    expect(lines.slice(at + 1)).toEqual(
      trace.map((t) => `    #${t.step} CPU ${t.cpu} t=${t.time}ns ${t.task}: ${t.kind} ${t.label}`.trimEnd()),
    );
    expect(lines.slice(at + 1).filter((l) => / (read|write|rmw) counter$/.test(l))).toHaveLength(4);
    // An exploration's failure has no trace to carry (its message has the replay command instead).
    vi.unstubAllEnvs();
    const explored = thrown(() =>
      exploreInTest(counterScenario(false), { policy: 'dfs' }),
    ) as ExplorationFailure;
    expect(explored.trace).toBeNull();
    expect(explored.message).not.toMatch(/^ {2}trace/m);
  });

  it('a long replayed failure lists its last 200 steps and says the error holds them all', () => {
    const long = counterScenario(false, 2, 100);
    const schedule = explore(long, { policy: 'random', runs: 20 }).failure!.schedule;
    vi.stubEnv(REPLAY_ENV, schedule);
    const e = thrown(() => exploreInTest(long, { policy: 'random' })) as ExplorationFailure;
    const trace = e.trace!;
    expect(trace.length).toBeGreaterThan(400);
    const lines = e.message.split('\n');
    const at = lines.indexOf(
      `  trace (the last 200 of ${trace.length} steps; the error's \`trace\` holds them all):`,
    );
    expect(at).toBeGreaterThan(0);
    const shown = lines.slice(at + 1);
    expect(shown).toHaveLength(200);
    const last = trace[trace.length - 1];
    expect(shown[199]).toBe(
      `    #${last.step} CPU ${last.cpu} t=${last.time}ns ${last.task}: ${last.kind} ${last.label}`,
    );
    expect(shown[0]).toMatch(new RegExp(`^    #${trace[trace.length - 200].step} CPU `));
  });

  it('with SPF_REPLAY set to a schedule that passes returns one replayed run', () => {
    const ok = runScenario(counterScenario(true, 2, 3), timed());
    expect(ok.ok).toBe(true);
    vi.stubEnv(REPLAY_ENV, ok.schedule);
    const res = exploreInTest(counterScenario(true, 2, 3), { policy: 'dfs' });
    expect(res).toEqual({ policy: 'replay', runs: 1, exhausted: false, failure: null, maxSteps: ok.steps });
    expect(replaySchedule(counterScenario(true, 2, 3), ok.schedule).steps).toBe(ok.steps);
  });

  it('an empty SPF_REPLAY explores as usual', () => {
    vi.stubEnv(REPLAY_ENV, '');
    const e = thrown(() => exploreInTest(counterScenario(false), { policy: 'dfs' })) as Error;
    expect(e.message).toMatch(/^dfs\(bound=2\) found a failure after/);
  });

  it('explores where there is no process object (a browser worker)', () => {
    vi.stubGlobal('process', undefined);
    let res: unknown;
    try {
      res = exploreInTest(counterScenario(true), { policy: 'dfs', bound: 1 });
    } finally {
      vi.unstubAllGlobals();
    }
    expect(res).toMatchObject({ policy: 'dfs(bound=1)', failure: null, exhausted: true });
  });
});
