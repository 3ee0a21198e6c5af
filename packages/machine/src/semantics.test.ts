import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import { cpuRelax, delay, type Kernel, self, sendIpi } from './effects.js';
import { kassert } from './errors.js';
import { explore } from './explore.js';
import { Machine } from './machine.js';

/** A test-and-set lock built from a plain load then store: broken, two CPUs can both take it. */
function tasScenario(correct: boolean) {
  return {
    cpus: 2,
    setup(m: Machine) {
      const lock = new AtomicCell(0, 'lock');
      const counter = new Cell(0, 'counter');
      function* acquire(): Kernel<void> {
        for (;;) {
          if (correct) {
            if ((yield* lock.xchg(1)) === 0) return;
          } else if ((yield* lock.load()) === 0) {
            yield* lock.store(1);
            return;
          }
          while ((yield* lock.load()) !== 0) yield* cpuRelax('lock');
        }
      }
      for (let i = 0; i < 2; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let k = 0; k < 2; k++) {
            yield* acquire();
            const v = yield* counter.load();
            yield* counter.store(v + 1);
            yield* lock.store(0);
          }
        });
      }
      return () => kassert(counter.value === 4, `counter is ${counter.value}, expected 4`);
    },
  };
}

describe('dfs and spin loops', () => {
  it('finds a broken test-and-set lock although both CPUs spin', () => {
    const res = explore(tasScenario(false), { policy: 'dfs', bound: 2, runs: 20_000 });
    expect(res.failure?.kind).toBe('assertion');
  });

  it('exhausts the bounded tree of a correct spinlock instead of exploring ever longer spins', () => {
    const res = explore(tasScenario(true), { policy: 'dfs', bound: 2, runs: 50_000 });
    expect(res.failure).toBeNull();
    expect(res.exhausted).toBe(true);
  });
});

describe('timed semantics', () => {
  it('code after a delay sees what other CPUs did during the delay', () => {
    const m = new Machine({ cpus: 2 });
    const flag = new Cell(false, 'flag');
    let seen: boolean | undefined;
    m.spawn(0, 'sleeper', function* () {
      yield* delay(5_000, 'long section');
      seen = flag.value; // a direct look, no effect in between
    });
    m.spawn(1, 'writer', function* () {
      yield* delay(1_000);
      yield* flag.store(true);
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toBe(true);
  });

  it('self() tells an IPI handler that it runs in interrupt context', () => {
    const m = new Machine({ cpus: 2 });
    const seen: Array<[boolean, boolean]> = [];
    m.spawn(0, 'sender', function* () {
      const s = yield* self();
      seen.push([s.inIrq, s.irqsEnabled]);
      yield* sendIpi([1], function* () {
        const h = yield* self();
        seen.push([h.inIrq, h.irqsEnabled]);
      });
    });
    m.spawn(1, 'idle', function* () {
      yield* delay(10_000);
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual([
      [false, true],
      [true, false],
    ]);
  });
});
