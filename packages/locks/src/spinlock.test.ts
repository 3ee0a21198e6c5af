import {
  AtomicCell,
  block,
  Cell,
  delay,
  type Kernel,
  kassert,
  localIrqSave,
  Machine,
  runSync,
  type Scenario,
  WaitQueue,
} from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep } from './lockdep.js';
import { RawSpinLock, SpinLock } from './spinlock.js';
import { PlainTestAndSetLock } from './test-support/broken.js';
import { expectCaught, exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

type AnyLock = { lock(): Kernel<void>; unlock(): Kernel<void> };

/** `cpus` CPUs each add 1 to a shared counter `iters` times with a non-atomic load/store under the lock. */
function counterScenario(makeLock: () => AnyLock, cpus = 2, iters = 2): Scenario {
  return {
    name: 'spinlock counter',
    cpus,
    setup(m) {
      const lock = makeLock();
      const counter = new Cell(0, 'counter');
      let inside = 0;
      for (let i = 0; i < cpus; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let k = 0; k < iters; k++) {
            yield* lock.lock();
            inside++;
            kassert(inside === 1, `${inside} CPUs inside the critical section`);
            const v = yield* counter.load();
            yield* counter.store(v + 1);
            inside--;
            yield* lock.unlock();
          }
        });
      }
      return () =>
        kassert(counter.value === cpus * iters, `counter ${counter.value}, expected ${cpus * iters}`);
    },
  };
}

describe('SpinLock', () => {
  it('gives mutual exclusion under random, pct and dfs', () => {
    exploreAll(
      counterScenario(() => new SpinLock('lock')),
      'gives mutual exclusion under random, pct and dfs',
    );
  });

  it('gives mutual exclusion with three CPUs and irqsave', () => {
    const s: Scenario = {
      cpus: 3,
      setup(m) {
        const lock = new SpinLock('lock');
        const c = new Cell(0, 'c');
        for (let i = 0; i < 3; i++) {
          m.spawn(i, `t${i}`, function* () {
            const f = yield* lock.lockIrqsave();
            const v = yield* c.load();
            yield* c.store(v + 1);
            yield* lock.unlockIrqrestore(f);
          });
        }
        return () => kassert(c.value === 3, `c=${c.value}`);
      },
    };
    exploreAll(s, 'gives mutual exclusion with three CPUs and irqsave', ['random', 'pct']);
  });

  it('serves waiters in FIFO ticket order', () => {
    const s: Scenario = {
      cpus: 3,
      setup(m) {
        const lock = new RawSpinLock('fifo', { lockdep: false });
        const served: number[] = [];
        for (let i = 0; i < 3; i++) {
          m.spawn(i, `t${i}`, function* () {
            for (let k = 0; k < 2; k++) {
              const ticket = yield* lock.archSpinLock();
              served.push(ticket);
              yield* lock.archSpinUnlock();
            }
          });
        }
        return () =>
          kassert(
            served.every((t, i) => t === i),
            `tickets served out of order: ${served.join(',')}`,
          );
      },
    };
    exploreAll(s, 'serves waiters in FIFO ticket order');
  });

  it('trylock fails while held and succeeds when free', () => {
    const lock = new SpinLock('t', { lockdep: false });
    expect(runSync(lock.trylock())).toBe(true);
    expect(lock.isLocked()).toBe(true);
    expect(runSync(lock.trylock())).toBe(false);
    runSync(lock.unlock());
    expect(lock.isLocked()).toBe(false);
  });

  it('lockIrqsave restores the previous interrupt state', () => {
    const m = new Machine({ cpus: 1 });
    const lock = new SpinLock('irq');
    const seen: boolean[] = [];
    m.spawn(0, 't', function* () {
      const f = yield* lock.lockIrqsave();
      seen.push(f, yield* localIrqSave());
      yield* lock.unlockIrqrestore(true);
      yield* lock.lockIrq();
      yield* lock.unlockIrq();
      seen.push(yield* localIrqSave());
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(seen).toEqual([true, false, true]);
  });

  it('reports an unlock of a lock that is not held, naming the lock and CPU', () => {
    const m = new Machine({ cpus: 2 });
    const lock = new SpinLock('pte_lock');
    m.spawn(1, 'bad', function* () {
      yield* lock.unlock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toContain("'pte_lock'");
    expect(r.failure?.message).toContain('CPU 1');
    expect(lock.isLocked()).toBe(false);
  });

  it('reports an unlock by a task that does not hold it', () => {
    const m = new Machine({ cpus: 2 });
    const lock = new SpinLock('l', { lockdep: false });
    m.spawn(0, 'owner', function* () {
      yield* lock.lock();
      yield* delay(10_000);
    });
    m.spawn(1, 'thief', function* () {
      yield* delay(1000);
      yield* lock.unlock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toMatch(/held by task 'owner' on CPU 0/);
  });

  it('disables preemption, so sleeping with it held is reported', () => {
    const m = new Machine({ cpus: 1 });
    const lock = new SpinLock('l', { lockdep: false });
    m.spawn(0, 't', function* () {
      yield* lock.lock();
      yield* block(new WaitQueue('never'), () => false);
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('might-sleep');
  });

  it('catches the broken test-and-set lock built from a plain read and write', () => {
    const scenario = counterScenario(() => new PlainTestAndSetLock('tas'));
    for (const opts of [
      { policy: 'random', runs: 500, seed: 3 },
      { policy: 'pct', runs: 3000, seed: 1, depth: 3 },
      { policy: 'dfs', runs: 20_000, bound: 2 },
    ] as const) {
      const f = expectCaught(scenario, opts, 'assertion');
      expect(f.message).toMatch(/inside the critical section|counter/);
    }
  });

  it('counts contended lock transfers in the cost model', () => {
    const m = new Machine({ cpus: 4 });
    const lock = new SpinLock('hot', { lockdep: false });
    const n = new AtomicCell(0, 'n');
    for (let i = 0; i < 4; i++) {
      m.spawn(i, `t${i}`, function* () {
        for (let k = 0; k < 10; k++) {
          yield* lock.lock();
          yield* n.fetchAdd(1);
          yield* lock.unlock();
        }
      });
    }
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(n.value).toBe(40);
    expect(r.time).toBeGreaterThan(40 * 60);
  });
});
