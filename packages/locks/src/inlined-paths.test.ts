import {
  AtomicCell,
  delay,
  type Kernel,
  kassert,
  policyFingerprints,
  runScenario,
  type Scenario,
} from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { current } from './current.js';
import { Lockdep } from './lockdep.js';
import {
  RWSEM_FLAG_HANDOFF,
  RWSEM_FLAG_WAITERS,
  RWSEM_READER_BIAS,
  RWSEM_WRITER_LOCKED,
  RwSemaphore,
} from './rwsem.js';
import { SpinLock } from './spinlock.js';

/**
 * Hot paths kept honest (issue 12 item 6): `spin_lock()`, `spin_unlock()`, `down_read_trylock()` and
 * `up_read()` are written out by hand (one generator fewer per operation on every fault). Each must perform
 * exactly the effects of the plain composition it replaces, in the same order, so every run under every
 * policy has the same trace hash, time, schedule and failure with either.
 */

type SpinVariant = 'inlined' | 'plain';

/** `spin_lock()` as its parts: `enter()` then `arch_spin_lock()` (what `lockNested(0)` runs). */
function* plainSpinLock(lock: SpinLock): Kernel<void> {
  yield* lock.lockNested(0);
}

/** `spin_unlock()` as its parts, with lockdep off: `current()`, `arch_spin_unlock()`, `preempt_enable()`. */
function* plainSpinUnlock(lock: SpinLock): Kernel<void> {
  const c = yield* current();
  yield* lock.archSpinUnlock();
  if (c.task) c.task.preemptCount--;
}

function spinScenario(lockVariant: SpinVariant, unlockVariant: SpinVariant, lockdep: boolean): Scenario {
  return {
    cpus: 3,
    setup(m) {
      const lock = new SpinLock('spin', { lockdep: lockdep ? new Lockdep() : false });
      const data = new AtomicCell(0, 'data');
      for (let i = 0; i < 3; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let r = 0; r < 3; r++) {
            if (lockVariant === 'inlined') yield* lock.lock();
            else yield* plainSpinLock(lock);
            const v = yield* data.load();
            yield* delay(30 + 20 * i);
            yield* data.store(v + 1);
            if (unlockVariant === 'inlined') yield* lock.unlock();
            else yield* plainSpinUnlock(lock);
          }
        });
      }
      return () => kassert(data.value === 9, `data is ${data.value}`);
    },
  };
}

const READ_FAILED_MASK = RWSEM_WRITER_LOCKED | RWSEM_FLAG_WAITERS | RWSEM_FLAG_HANDOFF;

/** `__down_read_trylock()` from the cells' own operations (kernel/locking/rwsem.c). */
function* plainDownReadTrylock(sem: RwSemaphore): Kernel<boolean> {
  const c = yield* current();
  let tmp = yield* sem.count.load();
  while (!(tmp & READ_FAILED_MASK)) {
    const old = yield* sem.count.cmpxchg(tmp, tmp + RWSEM_READER_BIAS);
    if (old === tmp) {
      yield* sem.owner.store({ task: c.task, readerOwned: true });
      return true;
    }
    tmp = old;
  }
  return false;
}

/** `up_read()`'s fast path from the cells' own operations (no waiters in this scenario). */
function* plainUpRead(sem: RwSemaphore): Kernel<void> {
  yield* current();
  yield* sem.count.addReturn(-RWSEM_READER_BIAS);
}

function rwsemScenario(variant: SpinVariant): Scenario {
  return {
    cpus: 4,
    setup(m) {
      // No lockdep, and no sleeping writer, so that the plain read side needs none of the lock's bookkeeping.
      const sem = new RwSemaphore('sem', { lockdep: false, optimisticSpin: false });
      const data = new AtomicCell(0, 'data');
      m.spawn(0, 'writer', function* () {
        for (let r = 0; r < 3; r++) {
          if (yield* sem.downWriteTrylock()) {
            yield* data.fetchAdd(1);
            yield* delay(200);
            yield* sem.upWrite();
          }
          yield* delay(150);
        }
      });
      for (let i = 1; i < 4; i++) {
        m.spawn(i, `reader${i}`, function* () {
          for (let r = 0; r < 4; r++) {
            const ok =
              variant === 'inlined' ? yield* sem.downReadTrylock() : yield* plainDownReadTrylock(sem);
            if (ok) {
              yield* data.load();
              yield* delay(60 * i);
              if (variant === 'inlined') yield* sem.upRead();
              else yield* plainUpRead(sem);
            }
            yield* delay(40);
          }
        });
      }
      return () => kassert(sem.count.value === 0, `count is ${sem.count.value} at the end`);
    },
  };
}

const opts = { dfsRuns: 40 };

describe('inlined hot paths perform exactly the plain versions', () => {
  it('spin_lock(): inlined vs enter() + arch_spin_lock(), with lockdep (its irq save/restore pair) and without', () => {
    for (const lockdep of [true, false]) {
      const inlined = policyFingerprints(
        (p) => runScenario(spinScenario('inlined', 'inlined', lockdep), p),
        opts,
      );
      const plain = policyFingerprints(
        (p) => runScenario(spinScenario('plain', 'inlined', lockdep), p),
        opts,
      );
      expect(plain).toEqual(inlined);
      expect(inlined.timed).toMatch(/ ok$/);
    }
  });

  it('spin_unlock(): inlined vs current() + arch_spin_unlock() + preempt_enable()', () => {
    const inlined = policyFingerprints(
      (p) => runScenario(spinScenario('inlined', 'inlined', false), p),
      opts,
    );
    const plain = policyFingerprints((p) => runScenario(spinScenario('inlined', 'plain', false), p), opts);
    expect(plain).toEqual(inlined);
  });

  it('down_read_trylock() and up_read(): inlined vs the cells own load, cmpxchg, store and add_return', () => {
    const inlined = policyFingerprints((p) => runScenario(rwsemScenario('inlined'), p), opts);
    const plain = policyFingerprints((p) => runScenario(rwsemScenario('plain'), p), opts);
    expect(plain).toEqual(inlined);
    expect(inlined.timed).toMatch(/ ok$/);
  });
});
