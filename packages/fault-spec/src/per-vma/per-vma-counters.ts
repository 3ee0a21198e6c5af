/**
 * The per-VMA-lock events of Linux 6.4 (`enum vm_event_item` in include/linux/vm_event_item.h, shown in
 * /proc/vmstat as `vma_lock_success` and so on), counted by {@link lockVmaUnderRcu} and the fault entry.
 */
export interface PerVmaLockCounters {
  /** Faults finished under the VMA lock (including SIGSEGV ACCERR decided there). */
  VMA_LOCK_SUCCESS: number;
  /** `lock_vma_under_rcu()` found no usable VMA or could not lock it: the fault takes mmap_lock. */
  VMA_LOCK_ABORT: number;
  /** The fault returned VM_FAULT_RETRY under the VMA lock and is redone under mmap_lock. */
  VMA_LOCK_RETRY: number;
  /** The locked VMA had been detached meanwhile; the lookup was repeated. */
  VMA_LOCK_MISS: number;
}

/** Fresh counters, all zero. */
export function newPerVmaLockCounters(): PerVmaLockCounters {
  return { VMA_LOCK_SUCCESS: 0, VMA_LOCK_ABORT: 0, VMA_LOCK_RETRY: 0, VMA_LOCK_MISS: 0 };
}
