import type { RwsemPaths, RwsemState, RwsemWaiter } from '@spf/locks';
import { block, type Kernel, rmw, self, wake } from '@spf/machine';

// Lab 2, part 2: a reader-writer semaphore (kernel/locking/rwsem.c, simplified).
//
// What you have (see RwsemState in @spf/locks):
//   sem.count      an AtomicCell, 0 at the start and whenever the lock is free; the rest of the encoding is
//                  yours (e.g. n > 0 readers, -1 a writer).
//                  `yield* rmw(sem.count.line)` performs a locked read-modify-write of its cache line: the
//                  plain JavaScript you run right after it, up to the next yield, is atomic with it.
//   sem.waiters    an array you maintain: who waits, in arrival order, with `granted` set by the waker.
//   sem.waitQueue  sleep with `yield* block(sem.waitQueue, () => condition)` (the check and the sleep are one
//                  atomic step, re-checked on every wake-up); wake sleepers with `yield* wake(sem.waitQueue, n)`.
//   `const { task } = yield* self()` gives the running task.
//
// Requirements (each is a graded test): readers share the lock; a writer excludes everyone; a reader
// leaving lets a waiting writer in; updates of the count are never lost; and a writer waiting behind
// readers is not starved by new readers arriving.

export const rwsemPaths: RwsemPaths = {
  *downRead(sem: RwsemState): Kernel<void> {
    yield* rmw(sem.count.line);
    // TODO: take the lock for reading, or queue (a RwsemWaiter in sem.waiters) and sleep until granted.
    void [block, self];
  },

  *upRead(sem: RwsemState): Kernel<void> {
    yield* rmw(sem.count.line);
    // TODO: drop the read hold; the last reader out hands the lock to waiters and wakes them.
    void wake;
  },

  *downWrite(sem: RwsemState): Kernel<void> {
    yield* rmw(sem.count.line);
    // TODO: take the lock for writing, or queue and sleep until granted.
  },

  *upWrite(sem: RwsemState): Kernel<void> {
    yield* rmw(sem.count.line);
    // TODO: release, hand the lock to the waiters at the head of the queue, wake them.
  },
};

/** A waiter as you might queue it. */
export type Waiter = RwsemWaiter;
