// @spf/locks: the kernel's synchronization primitives, built on @spf/machine effects.
export { smpMb, smpRmb, smpWmb } from './barriers.js';
export { type Current, current, describeCurrent, irqsEnabled } from './current.js';
export { IntervalNode, IntervalTree } from './interval-tree.js';
export { LockError } from './lock-error.js';
export {
  type AcquireMode,
  activeLockdep,
  defaultLockdep,
  Lockdep,
  LockdepError,
  type LockdepMap,
  type LockWaitKind,
  resolveLockdep,
  SINGLE_DEPTH_NESTING,
} from './lockdep.js';
export { Mutex, type MutexOptions, type MutexOwner } from './mutex.js';
export { RangeLock, type RangeLockHandle, type RangeLockOptions } from './range-lock.js';
export { Rcu, type RcuCallback, RcuError } from './rcu.js';
export { type Poisonable, RcuBox, RcuObject } from './rcu-object.js';
export { REFCOUNT_SATURATED, Refcount, RefcountError } from './refcount.js';
export {
  RWSEM_FLAG_HANDOFF,
  RWSEM_FLAG_WAITERS,
  RWSEM_READER_BIAS,
  RWSEM_READER_SHIFT,
  RWSEM_WAIT_TIMEOUT_NS,
  RWSEM_WRITER_LOCKED,
  RwSemaphore,
  type RwSemaphoreOptions,
} from './rwsem.js';
export type { RwsemPaths, RwsemState, RwsemWaiter } from './rwsem-paths.js';
export { SeqCount, type SeqCountOptions } from './seqcount.js';
export type { SeqcountReadSide, SeqcountState } from './seqcount-read-side.js';
export { SeqLock, type SeqLockOptions } from './seqlock.js';
export type { SleepingRwLock } from './sleeping-rw-lock.js';
export { RawSpinLock, SpinLock, type SpinLockOptions } from './spinlock.js';
