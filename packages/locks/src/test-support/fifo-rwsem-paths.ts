import { block, type Kernel, self, wake, rmwEffect } from '@spf/machine';
import type { RwsemPaths, RwsemState, RwsemWaiter } from '../rwsem-paths.js';

/*
 * Count encoding of this test double: 0 = free, n > 0 = n readers, -1 = one writer.
 * Every decision is made in the same atomic step as a locked RMW on the count's line, so the check
 * and the update (and queueing) can never be split by another CPU.
 */

/** Hands the lock to the waiters at the head of the queue that can have it now; returns how many. */
function grantFromHead(sem: RwsemState): number {
  let granted = 0;
  while (sem.waiters.length > 0) {
    const w = sem.waiters[0];
    if (w.kind === 'write') {
      if (sem.count.value !== 0) break;
      sem.count.value = -1;
    } else {
      if (sem.count.value < 0) break;
      sem.count.value++;
    }
    w.granted = true;
    sem.waiters.shift();
    granted++;
    if (w.kind === 'write') break;
  }
  return granted;
}

/** Queues the caller and sleeps until a releaser grants it the lock. */
function* waitForGrant(sem: RwsemState, w: RwsemWaiter): Kernel<void> {
  yield* block(sem.waitQueue, () => w.granted, `${sem.name} (${w.kind})`);
}

/**
 * A test double for the pluggable paths: a deliberately simple, fair rw_semaphore: one count, a FIFO of waiters,
 * and no fast path that could overtake a queued waiter. A reader or writer that cannot have the lock, or
 * finds anyone queued, queues; releasers hand the lock to the head of the queue (a writer, or all the
 * readers up to the next writer) and wake the sleepers, who go back to sleep unless granted. Because
 * newcomers queue behind a waiting writer, a stream of readers cannot starve it.
 *
 * Compared with kernel/locking/rwsem.c it has no lock stealing, no optimistic spinning, no handoff bit
 * (it always hands off) and wakes every sleeper instead of only the granted ones.
 */
export const fifoRwsemPaths: Required<RwsemPaths> = {
  *downRead(sem) {
    const { task } = yield* self();
    yield rmwEffect(sem.count.line);
    if (sem.count.value >= 0 && sem.waiters.length === 0) {
      sem.count.value++;
      return;
    }
    const w: RwsemWaiter = { kind: 'read', granted: false, task };
    sem.waiters.push(w);
    yield* waitForGrant(sem, w);
  },

  *upRead(sem) {
    yield rmwEffect(sem.count.line);
    sem.count.value--;
    if (sem.count.value === 0 && grantFromHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);
  },

  *downWrite(sem) {
    const { task } = yield* self();
    yield rmwEffect(sem.count.line);
    if (sem.count.value === 0 && sem.waiters.length === 0) {
      sem.count.value = -1;
      return;
    }
    const w: RwsemWaiter = { kind: 'write', granted: false, task };
    sem.waiters.push(w);
    yield* waitForGrant(sem, w);
  },

  *upWrite(sem) {
    yield rmwEffect(sem.count.line);
    sem.count.value = 0;
    if (grantFromHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);
  },

  *downReadTrylock(sem) {
    yield rmwEffect(sem.count.line);
    if (sem.count.value < 0 || sem.waiters.length > 0) return false;
    sem.count.value++;
    return true;
  },

  *downWriteTrylock(sem) {
    yield rmwEffect(sem.count.line);
    if (sem.count.value !== 0) return false;
    sem.count.value = -1;
    return true;
  },

  *downgradeWrite(sem) {
    yield rmwEffect(sem.count.line);
    sem.count.value = 1;
    if (grantFromHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);
  },
};
