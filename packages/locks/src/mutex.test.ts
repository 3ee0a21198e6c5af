import { Cell, delay, kassert, Machine, runSync, type Scenario } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep } from './lockdep.js';
import { Mutex } from './mutex.js';
import { exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

function counter(cpus: number, iters: number): Scenario {
  return {
    cpus,
    setup(m) {
      const mutex = new Mutex('i_mmap_rwsem');
      const c = new Cell(0, 'c');
      let inside = 0;
      for (let i = 0; i < cpus; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let k = 0; k < iters; k++) {
            yield* mutex.lock();
            inside++;
            kassert(inside === 1, `${inside} tasks inside the mutex`);
            const v = yield* c.load();
            yield* c.store(v + 1);
            inside--;
            yield* mutex.unlock();
          }
        });
      }
      return () => {
        kassert(c.value === cpus * iters, `counter ${c.value}`);
        kassert(!mutex.isLocked(), 'mutex still locked');
      };
    },
  };
}

describe('Mutex', () => {
  it('gives mutual exclusion and progress under random, pct and dfs', () => {
    exploreAll(counter(2, 2), 'gives mutual exclusion and progress under random, pct and dfs');
    exploreAll(counter(3, 1), 'gives mutual exclusion and progress under random, pct and dfs', [
      'random',
      'pct',
    ]);
  });

  it('hands the mutex to a woken waiter so it cannot starve', () => {
    // Two tasks on CPU 1 and 2 hammer the mutex; the waiter on CPU 0 must still get it within the run.
    const s: Scenario = {
      cpus: 3,
      maxSteps: 100_000,
      setup(m) {
        const mutex = new Mutex('m', { lockdep: false });
        let got = false;
        m.spawn(0, 'waiter', function* () {
          yield* delay(100);
          yield* mutex.lock();
          got = true;
          yield* mutex.unlock();
        });
        for (let i = 1; i < 3; i++) {
          m.spawn(i, `h${i}`, function* () {
            while (!got) {
              yield* mutex.lock();
              yield* delay(100);
              yield* mutex.unlock();
            }
          });
        }
      },
    };
    exploreAll(s, 'hands the mutex to a woken waiter so it cannot starve', ['random']);
  });

  it('trylock', () => {
    const mutex = new Mutex('m', { lockdep: false });
    expect(runSync(mutex.trylock())).toBe(true);
    expect(runSync(mutex.trylock())).toBe(false);
    runSync(mutex.unlock());
    expect(mutex.isLocked()).toBe(false);
  });

  it('reports mutex_unlock of an unlocked mutex, naming it and the CPU', () => {
    const m = new Machine({ cpus: 3 });
    const mutex = new Mutex('cred_guard');
    m.spawn(2, 't', function* () {
      yield* mutex.unlock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toMatch(
      /mutex_unlock of 'cred_guard' by task 't' on CPU 2, but it is not locked/,
    );
  });
});
