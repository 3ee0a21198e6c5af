import type { PerVmaLockContext } from '@spf/fault-spec';
import type { Kernel } from '@spf/machine';
import type { MmStruct, VmArea } from '@spf/vma';

// Lab 5: the reader side of Linux 6.4's per-VMA locks (vma_start_read and lock_vma_under_rcu).
//
// A user fault first calls lockVmaUnderRcu() without mmap_lock. If it returns a VMA, read-locked, the
// fault runs under that lock alone (the handler calls handle_mm_fault() and then vma_end_read(), which is
// vma.vmLock.upRead()). If it returns null, the fault takes mmap_lock as always: slower, never wrong.
// Writers (mprotect, munmap, mremap, fork) hold mmap_lock for writing and call your vmaStartWrite() on each
// VMA they change, so a VMA marked in their section is not yours to take. What you have:
//
//   - mm.rcu.readLock()/readUnlock(): the RCU read section the lookup runs in (VMAs are freed after a grace
//     period). Nothing inside it may sleep.
//   - mm.findVmaRcu(address): the first VMA that ends above address (it may start above it too).
//   - vma.vmLock: the VMA's rw_semaphore (downReadTrylock(), downRead(), upRead(), ...).
//   - vma.vmLockSeq and mm.mmLockSeq: cells (yield* cell.load()). vm_lock_seq == mm_lock_seq means a writer
//     marked the VMA in the current mmap write section.
//   - vma.detached: munmap removed it from the tree. vma.vmStart, vma.vmEnd, vma.vmFlags, vma.anonVma,
//     vma.isAnonymous().
//   - ctx.counters: count VMA_LOCK_ABORT when you return null and VMA_LOCK_MISS when you look again.

/** vma_start_read(): read-lock the VMA without sleeping, or return false. */
export function* vmaStartRead(vma: VmArea): Kernel<boolean> {
  // TODO
  void vma;
  return false;
}

/** lock_vma_under_rcu(): the VMA containing address, read-locked, or null to take mmap_lock. */
export function* lockVmaUnderRcu(
  ctx: PerVmaLockContext,
  mm: MmStruct,
  address: number,
): Kernel<VmArea | null> {
  // TODO: for now every fault takes mmap_lock.
  void [mm, address];
  ctx.counters.VMA_LOCK_ABORT++;
  return null;
}
