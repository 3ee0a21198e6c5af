import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { delay, type Kernel, readEffect, rmwEffect, rmwLoopEffect, sendIpi } from './effects.js';
import { kassert } from './errors.js';
import { explore, replaySchedule, runScenario, runTimed, type Scenario } from './explore.js';
import { MemoryLine } from './memory-line.js';
import { policyFingerprints } from './policy-fingerprint.js';
import { random } from './policy/random.js';
import { runSync } from './run-sync.js';

/**
 * `cpus` CPUs each add 1 to a shared counter `rounds` times with a cmpxchg retry loop (read once, then
 * `try_cmpxchg` until it succeeds), written either as the plain loop or as one `rmwLoopEffect`. With `ipi`,
 * CPU 0 also sends CPU 1 an IPI whose handler adds 1 with the same loop. `resumed` counts how often the
 * code ran again after an attempt.
 */
function counterScenario(
  loop: boolean,
  cpus = 3,
  rounds = 3,
  ipi = false,
  resumed = { n: 0 },
  broken = false,
): Scenario {
  return {
    name: `cmpxchg counter (${loop ? 'rmwLoopEffect' : 'plain loop'})`,
    cpus,
    setup(m) {
      const line = new MemoryLine('counter');
      const count = new Cell(0, line);
      function* add(): Kernel<void> {
        yield readEffect(line);
        let tmp = count.value;
        if (loop) {
          yield rmwLoopEffect(line, 'cmpxchg', () => {
            const old = count.value;
            if (old === tmp || broken) {
              count.value = tmp + 1;
              return false;
            }
            tmp = old;
            return true;
          });
          resumed.n++;
        } else {
          for (;;) {
            yield rmwEffect(line, 'cmpxchg');
            resumed.n++;
            const old = count.value;
            if (old === tmp || broken) {
              count.value = tmp + 1;
              break;
            }
            tmp = old;
          }
        }
      }
      const body = (i: number) =>
        function* (): Kernel<void> {
          for (let r = 0; r < rounds; r++) {
            yield* add();
            yield* delay(20 + 7 * i);
          }
          if (ipi && i === 0) yield* sendIpi([1], () => add(), true, 'add');
        };
      for (let i = 0; i < cpus; i++) m.spawn(i, `t${i}`, body(i));
      const total = cpus * rounds + (ipi ? 1 : 0);
      return () => kassert(count.value === total, `count is ${count.value}, expected ${total}`);
    },
  };
}

describe('rmwLoopEffect (a cmpxchg retry loop the machine repeats itself)', () => {
  it('runs exactly as the plain loop under every policy: trace hash, time, schedule, failures', () => {
    for (const [cpus, rounds, ipi] of [
      [3, 3, false],
      [2, 4, true],
      [6, 2, false],
      [4, 2, true],
    ] as const) {
      const plain = policyFingerprints((p) => runScenario(counterScenario(false, cpus, rounds, ipi), p), {
        dfsRuns: 30,
      });
      const looped = policyFingerprints((p) => runScenario(counterScenario(true, cpus, rounds, ipi), p), {
        dfsRuns: 30,
      });
      expect(looped).toEqual(plain);
    }
  });

  it('performs failed attempts without resuming the code, and random schedules replay across the two forms', () => {
    const plainResumed = { n: 0 };
    const loopResumed = { n: 0 };
    const plain = runTimed(counterScenario(false, 6, 3, true, plainResumed));
    const looped = runTimed(counterScenario(true, 6, 3, true, loopResumed));
    expect(looped.ok).toBe(true);
    expect(looped.traceHash).toBe(plain.traceHash);
    expect(looped.steps).toBe(plain.steps);
    // Six CPUs contend: attempts fail, and the plain loop's code ran after each; the effect's only once per add.
    expect(loopResumed.n).toBe(6 * 3 + 1);
    expect(plainResumed.n).toBeGreaterThan(loopResumed.n);
    for (let seed = 1; seed <= 20; seed++) {
      const a = runScenario(counterScenario(true, 3, 2, true), random(seed));
      const b = runScenario(counterScenario(false, 3, 2, true), random(seed));
      expect(a.schedule).toBe(b.schedule);
      expect(replaySchedule(counterScenario(false, 3, 2, true), a.schedule).traceHash).toBe(a.traceHash);
    }
  });

  it('explorers find the same lost update in a loop that stores without comparing', () => {
    for (const policy of ['random', 'pct', 'dfs'] as const) {
      const a = explore(counterScenario(true, 2, 1, false, { n: 0 }, true), { policy, runs: 300, seed: 5 });
      const b = explore(counterScenario(false, 2, 1, false, { n: 0 }, true), { policy, runs: 300, seed: 5 });
      expect(a.failure?.kind).toBe('assertion');
      expect(a.failure?.kind).toBe(b.failure?.kind);
      expect(a.runs).toBe(b.runs);
    }
  });

  it('a step that throws fails the run with its message, and a loop that never ends reaches the step limit', () => {
    const throwing: Scenario = {
      cpus: 1,
      setup(m) {
        const line = new MemoryLine('l');
        m.spawn(0, 'bad', function* () {
          yield rmwLoopEffect(line, undefined, () => {
            throw new Error('the step found a corrupt value');
          });
        });
      },
    };
    const r = runTimed(throwing);
    expect(r.ok).toBe(false);
    expect(r.failure?.message).toContain('the step found a corrupt value');
    expect(r.failure?.task).toBe('bad');
    const forever: Scenario = {
      cpus: 1,
      maxSteps: 500,
      setup(m) {
        const line = new MemoryLine('l');
        m.spawn(0, 'spinner', function* () {
          yield rmwLoopEffect(line, 'cmpxchg', () => true);
        });
      },
    };
    const f = runTimed(forever);
    expect(f.failure?.kind).toBe('step-limit');
    expect(f.failure?.cpus[0].next).toBe('rmw cmpxchg');
  });

  it('runSync performs the attempts until the step says stop', () => {
    const count = new Cell(5, 'c');
    let attempts = 0;
    const seen = runSync(
      (function* (): Kernel<number> {
        yield rmwLoopEffect(count.line, undefined, () => ++attempts < 4);
        return attempts;
      })(),
    );
    expect(seen).toBe(4);
  });
});
