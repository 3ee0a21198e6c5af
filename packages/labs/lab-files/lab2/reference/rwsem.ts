import type { RwsemPaths, RwsemState, RwsemWaiter } from '@spf/locks';
import { block, type Kernel, rmw, self, wake } from '@spf/machine';

// Lab 2 reference solution, part 2: a fair reader-writer semaphore (after kernel/locking/rwsem.c, much
// simplified).
//
// Encoding of sem.count: 0 = free, n > 0 = held by n readers, -1 = held by a writer.
// Every decision is taken in the same atomic step as a locked read-modify-write of the count's cache line
// (`yield* rmw(sem.count.line)`, then plain JavaScript until the next yield), so no other CPU can slip in
// between the check and the update. Waiters queue in sem.waiters in arrival order; whoever releases the
// lock hands it to the head of the queue (one writer, or every reader up to the next writer) and wakes the
// sleepers. Newcomers queue behind anyone already waiting, so a stream of readers cannot starve a writer.

/** Gives the lock to the waiters at the head of the queue that can have it now; returns how many. */
function grantHead(sem: RwsemState): number {
  let granted = 0;
  while (sem.waiters.length > 0) {
    const head = sem.waiters[0];
    if (head.kind === 'write') {
      if (sem.count.value !== 0) break;
      sem.count.value = -1;
    } else {
      if (sem.count.value < 0) break;
      sem.count.value += 1;
    }
    head.granted = true;
    sem.waiters.shift();
    granted++;
    if (head.kind === 'write') break;
  }
  return granted;
}

/**
 * Queues the caller (plain code: call it in the same atomic step as the rmw that found the lock busy) and
 * returns the sleep that waits until a releaser has granted it the lock.
 */
function queueAndSleep(sem: RwsemState, kind: 'read' | 'write', task: unknown): Kernel<void> {
  const me: RwsemWaiter = { kind, granted: false, task };
  sem.waiters.push(me);
  return block(sem.waitQueue, () => me.granted);
}

export const rwsemPaths: RwsemPaths = {
  *downRead(sem) {
    const { task } = yield* self(); // before the rmw: a yield between check and queueing would race
    yield* rmw(sem.count.line);
    if (sem.count.value >= 0 && sem.waiters.length === 0) {
      sem.count.value += 1;
      return;
    }
    yield* queueAndSleep(sem, 'read', task);
  },

  *upRead(sem) {
    yield* rmw(sem.count.line);
    sem.count.value -= 1;
    if (sem.count.value === 0 && grantHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);
  },

  *downWrite(sem) {
    const { task } = yield* self();
    yield* rmw(sem.count.line);
    if (sem.count.value === 0 && sem.waiters.length === 0) {
      sem.count.value = -1;
      return;
    }
    yield* queueAndSleep(sem, 'write', task);
  },

  *upWrite(sem) {
    yield* rmw(sem.count.line);
    sem.count.value = 0;
    if (grantHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);
  },
};
