import { AtomicCell, Cell } from '../cell.js';
import { block, type Kernel, wake } from '../effects.js';
import { kassert } from '../errors.js';
import type { Scenario } from '../explore.js';
import { WaitQueue } from '../wait-queue.js';

/**
 * Two CPUs each increment one counter `iterations` times, either with a locked RMW or with a plain load then
 * store (the classic lost update). The final check asserts no increment was lost.
 */
export function counterScenario(atomic: boolean, cpus = 2, iterations = 1): Scenario {
  return {
    name: `${atomic ? 'atomic' : 'non-atomic'} increment`,
    cpus,
    setup(m) {
      const counter = new AtomicCell(0, 'counter');
      for (let i = 0; i < cpus; i++) {
        m.spawn(i, `inc${i}`, function* () {
          for (let k = 0; k < iterations; k++) {
            if (atomic) yield* counter.fetchAdd(1);
            else {
              const v = yield* counter.load();
              yield* counter.store(v + 1);
            }
          }
        });
      }
      return () =>
        kassert(
          counter.value === cpus * iterations,
          `counter is ${counter.value}, expected ${cpus * iterations}`,
        );
    },
  };
}

/** A sleeping mutex built only from machine effects (cmpxchg on an owner word plus a wait queue). */
export class TestMutex {
  readonly owner: Cell<string | null>;
  readonly wq: WaitQueue;
  constructor(readonly name: string) {
    this.owner = new Cell<string | null>(null, `${name}.owner`);
    this.wq = new WaitQueue(name);
    this.wq.describe = () => this.owner.value ?? 'nobody';
  }
  *lock(who: string): Kernel<void> {
    for (;;) {
      const old = yield* this.owner.cmpxchg(null, who);
      if (old === null) return;
      yield* block(this.wq, () => this.owner.value === null);
    }
  }
  *unlock(): Kernel<void> {
    yield* this.owner.store(null);
    yield* wake(this.wq);
  }
}

/** Two tasks take two mutexes in opposite orders (ABBA): some interleavings deadlock. */
export function abbaScenario(): Scenario {
  return {
    name: 'ABBA',
    cpus: 2,
    setup(m) {
      const a = new TestMutex('lock A');
      const b = new TestMutex('lock B');
      m.spawn(0, 'T0', function* () {
        yield* a.lock('T0');
        yield* b.lock('T0');
        yield* b.unlock();
        yield* a.unlock();
      });
      m.spawn(1, 'T1', function* () {
        yield* b.lock('T1');
        yield* a.lock('T1');
        yield* a.unlock();
        yield* b.unlock();
      });
    },
  };
}
