import type { AtomicCell, Kernel, WaitQueue } from '@spf/machine';

/*
 * The pluggable paths of an rw_semaphore: `new RwSemaphore(name, { paths })` routes down_read, up_read,
 * down_write and up_write (and the optional trylocks and downgrade) through `paths`, handing them an
 * RwsemState (count, wait queue, waiter list, name; never the semaphore itself). The paths must do every
 * shared-memory access through the count cell (or `read`/`write`/`rmw` on its line), sleep only with
 * `block(sem.waitQueue, until)` and wake with `wake`/`wakeTask`. The semaphore keeps lockdep, misuse checks
 * (unlock without lock) and a mutual-exclusion checker around them. Without paths it runs the kernel's
 * slow paths (rwsem.ts).
 */

/**
 * The state of an rw_semaphore that pluggable paths may use: a count word, a FIFO of waiters and a
 * wait queue. The count encoding is the implementation's choice (the default follows
 * kernel/locking/rwsem.c: a writer-locked bit, a waiters bit, a handoff bit and a reader count); it starts
 * at 0. The waiter list needs no lock of its own: code between two yields runs atomically.
 */
export interface RwsemState {
  readonly count: AtomicCell;
  /** Sleepers, woken in FIFO order. */
  readonly waitQueue: WaitQueue;
  /** Waiting tasks in arrival order with what they want; maintained by the implementation. */
  readonly waiters: RwsemWaiter[];
  /** The name lockdep and reports use. */
  readonly name: string;
}

/** A task waiting on an rw_semaphore. */
export type RwsemWaiter = {
  readonly kind: 'read' | 'write';
  /** Set by the waker when the lock has been handed to this waiter. */
  granted: boolean;
  readonly task: unknown;
};

/**
 * down_read / up_read / down_write / up_write. The optional operations may be left out: then trylocks
 * report failure and downgrade_write is done as up_write followed by down_read (not atomic).
 */
export interface RwsemPaths {
  downRead(sem: RwsemState): Kernel<void>;
  upRead(sem: RwsemState): Kernel<void>;
  downWrite(sem: RwsemState): Kernel<void>;
  upWrite(sem: RwsemState): Kernel<void>;
  downReadTrylock?(sem: RwsemState): Kernel<boolean>;
  downWriteTrylock?(sem: RwsemState): Kernel<boolean>;
  downgradeWrite?(sem: RwsemState): Kernel<void>;
}
