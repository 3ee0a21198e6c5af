// Linux 6.4's per-VMA locks: lock_vma_under_rcu() and the fault entry that uses it.
export { lockVmaUnderRcu } from './lock-vma-under-rcu.js';
export {
  isPerVmaLockCheck,
  PER_VMA_LOCK_CHECKS,
  type PerVmaLockCheck,
  type PerVmaReaderCheck,
  type VmaStartWriteCheck,
} from './per-vma-checks.js';
export { newPerVmaLockCounters, type PerVmaLockCounters } from './per-vma-counters.js';
export {
  type PerVmaLockChecks,
  type PerVmaLockContext,
  PerVmaLockHandler,
  type PerVmaLockOptions,
  type PerVmaLockPaths,
  perVmaLock,
  resolvePerVmaLockOptions,
} from './per-vma-lock.js';
