import type { Kernel } from '@spf/machine';

/**
 * The whole-range operations of a sleeping reader-writer lock, as the mm code uses `mmap_lock`
 * (include/linux/mmap_lock.h). Both {@link RwSemaphore} and {@link RangeLock} implement it, so either can
 * serve as the mmap lock. Release operations must be called by the task that acquired.
 */
export interface SleepingRwLock {
  readonly name: string;
  downRead(): Kernel<void>;
  upRead(): Kernel<void>;
  downWrite(): Kernel<void>;
  /**
   * `mmap_write_lock_nested(mm, subclass)`: as {@link downWrite}, but lockdep files the acquisition under a
   * nesting subclass, for a second lock of the same class taken in a guaranteed order (`dup_mmap()`).
   */
  downWriteNested(subclass: number): Kernel<void>;
  upWrite(): Kernel<void>;
  downReadTrylock(): Kernel<boolean>;
  downWriteTrylock(): Kernel<boolean>;
  /** Turns the caller's write hold into a read hold without letting a writer in between. */
  downgradeWrite(): Kernel<void>;
  /** Plain reads for assertions (`rwsem_is_locked()`, `mmap_assert_write_locked()`). */
  isLocked(): boolean;
  isWriteLocked(): boolean;
  /** Number of read holders now. */
  readers(): number;
}
