import type { Kernel } from '@spf/machine';
import type { MmStruct, VmArea, VmaStartWriteSite } from '@spf/vma';

// Lab 5: the writer side of Linux 6.4's per-VMA locks (vma_start_write and vma_end_write_all).
//
// The syscalls of @spf/vma call vmaStartWrite(vma, site) on every VMA they are about to change, holding
// mmap_lock for writing (site names which: mprotect, munmap, mremap, vmaPrepare, dupMmap, ...), and
// vmaEndWriteAll(mm) from mmap_write_unlock() and mmap_write_downgrade(), before they release mmap_lock.
// A VMA you mark must stay closed to lockVmaUnderRcu() until vmaEndWriteAll(); a reader already inside the
// VMA must have left before vmaStartWrite() returns.

/** vma_start_write(): mark the VMA write-locked until the end of the current mmap write section. */
export function* vmaStartWrite(vma: VmArea, site: VmaStartWriteSite | undefined): Kernel<void> {
  // TODO
  void [vma, site];
}

/** vma_end_write_all(): end every VMA write lock of the section. */
export function* vmaEndWriteAll(mm: MmStruct): Kernel<void> {
  // TODO
  void mm;
}
