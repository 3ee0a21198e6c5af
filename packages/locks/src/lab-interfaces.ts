import type { AtomicCell, Kernel, WaitQueue } from '@spf/machine';

/*
 * Lab 2 contract. `SeqCount` takes `{ reader?: SeqcountReadSide }` and `RwSemaphore` takes
 * `{ paths?: RwsemPaths }`; given one, the lock routes those operations through it, passing itself as the
 * state (`SeqcountState` / `RwsemState`). Your code must do every shared-memory access through the state's
 * cells (or `read`/`write`/`rmw` on their lines) so the explorer can interleave other CPUs there, sleep only
 * with `block(sem.waitQueue, until)`, and wake with `wake`/`wakeTask`. The lock itself keeps lockdep,
 * misuse checks (unlock without lock) and a mutual-exclusion checker around your paths. The package's
 * reference solutions are `seqcountReadSide` and `simpleRwsemPaths`.
 */

/** The state of a seqcount_t that a read-side implementation may use. */
export interface SeqcountState {
  /** The sequence number: odd while a writer is inside its write section. */
  readonly sequence: AtomicCell;
  readonly name: string;
}

/** read_seqcount_begin / read_seqcount_retry (include/linux/seqlock.h). */
export interface SeqcountReadSide {
  /** Waits until no writer is active and returns the (even) sequence to validate against later. */
  readBegin(s: SeqcountState): Kernel<number>;
  /** True if a writer ran since `start` was read, so the read section must be retried. */
  readRetry(s: SeqcountState, start: number): Kernel<boolean>;
}

/**
 * The state of an rw_semaphore that a lab implementation may use: a count word, a FIFO of waiters and a
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
