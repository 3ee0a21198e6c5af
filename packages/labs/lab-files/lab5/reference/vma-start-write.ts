import type { Kernel } from '@spf/machine';
import type { MmStruct, VmArea, VmaStartWriteSite } from '@spf/vma';

// Lab 5: the writer side of Linux 6.4's per-VMA locks (vma_start_write and vma_end_write_all).

/**
 * vma_start_write() (include/linux/mm.h): mark the VMA write-locked until the end of the current mmap
 * write section. The caller holds mmap_lock for writing. `site` names the writer that calls (mprotect,
 * munmap, mremap, vmaPrepare, dupMmap, ...).
 */
export function* vmaStartWrite(vma: VmArea, site: VmaStartWriteSite | undefined): Kernel<void> {
  // Every writer locks: Linux 6.4.y calls this at each of these sites.
  void site;
  const mmLockSeq = yield* vma.vmMm.mmLockSeq.load();
  // Already marked in this section (__is_vma_write_locked()).
  if ((yield* vma.vmLockSeq.load()) === mmLockSeq) return;
  // Taking the lock for writing waits for the readers inside the VMA to leave; setting vm_lock_seq under it
  // keeps every later reader out until mm_lock_seq moves on.
  yield* vma.vmLock.downWrite();
  yield* vma.vmLockSeq.store(mmLockSeq);
  yield* vma.vmLock.upWrite();
}

/**
 * vma_end_write_all() (include/linux/mmap_lock.h), called by mmap_write_unlock() and mmap_write_downgrade()
 * while they still hold mmap_lock: ends every VMA write lock of the section at once.
 */
export function* vmaEndWriteAll(mm: MmStruct): Kernel<void> {
  yield* mm.mmLockSeq.update((v) => v + 1);
}
