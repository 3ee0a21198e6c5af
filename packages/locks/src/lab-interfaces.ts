import type { AtomicCell, Kernel, WaitQueue } from '@spf/machine';

/**
 * Injection points for the seqcount read side and the rw_semaphore paths (used by Lab 2 of the course).
 * `SeqCount` and `RwSemaphore` accept an implementation of these interfaces in their constructor options;
 * the package's own implementation is the default.
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
 * spinlock-free wait queue. The count encoding is the implementation's choice (the default follows
 * kernel/locking/rwsem.c: a writer-locked bit, a waiters bit, a handoff bit and a reader count).
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

/** down_read / up_read / down_write / up_write. */
export interface RwsemPaths {
  downRead(sem: RwsemState): Kernel<void>;
  upRead(sem: RwsemState): Kernel<void>;
  downWrite(sem: RwsemState): Kernel<void>;
  upWrite(sem: RwsemState): Kernel<void>;
}
