import type { PerVmaLockContext } from '@spf/fault-spec';
import type { Kernel } from '@spf/machine';
import { type MmStruct, VM_UFFD_MISSING, VM_UFFD_WP, type VmArea } from '@spf/vma';

// Lab 5: the reader side of Linux 6.4's per-VMA locks (vma_start_read and lock_vma_under_rcu).

/**
 * vma_start_read() (include/linux/mm.h): read-lock the VMA without ever sleeping, or fail (the fault then
 * takes mmap_lock). A writer marks a VMA by setting vm_lock_seq to mm_lock_seq; the mark lasts until
 * mmap_write_unlock() bumps mm_lock_seq.
 */
export function* vmaStartRead(vma: VmArea): Kernel<boolean> {
  const mm = vma.vmMm;
  // Before locking: a VMA marked in the current write section cannot be ours.
  if ((yield* vma.vmLockSeq.load()) === (yield* mm.mmLockSeq.load())) return false;
  // Never down_read(): we are inside rcu_read_lock(), where sleeping is forbidden.
  if (!(yield* vma.vmLock.downReadTrylock())) return false;
  // Again, now that we hold the lock: a writer may have marked the VMA (and dropped the lock) since the first
  // look. From now on it cannot: vma_start_write() takes the lock for writing to set vm_lock_seq.
  if ((yield* vma.vmLockSeq.load()) === (yield* mm.mmLockSeq.load())) {
    yield* vma.vmLock.upRead();
    return false;
  }
  return true;
}

/**
 * lock_vma_under_rcu() (mm/memory.c, Linux 6.4): the VMA containing `address`, read-locked, or null (count
 * VMA_LOCK_ABORT) when the fault must take mmap_lock.
 */
export function* lockVmaUnderRcu(
  ctx: PerVmaLockContext,
  mm: MmStruct,
  address: number,
): Kernel<VmArea | null> {
  yield* mm.rcu.readLock();
  for (;;) {
    // mas_walk(): the VMA containing the address; findVmaRcu returns the first one ending above it.
    const found = yield* mm.findVmaRcu(address);
    const vma = found !== null && found.vmStart <= address ? found : null;
    // 6.4 handles only anonymous VMAs that already have an anon_vma (anon_vma_prepare() looks at neighbours
    // that are not locked).
    if (vma === null || !vma.isAnonymous() || vma.anonVma === null) break;
    if (!(yield* vmaStartRead(vma))) break;
    // userfaultfd's handler would drop mmap_lock, which this fault does not hold.
    if ((vma.vmFlags & (VM_UFFD_MISSING | VM_UFFD_WP)) !== 0) {
      yield* vma.vmLock.upRead();
      break;
    }
    // vm_start/vm_end may have changed (a split) before we locked the VMA.
    if (address < vma.vmStart || address >= vma.vmEnd) {
      yield* vma.vmLock.upRead();
      break;
    }
    // Removed from the tree after we found it: another VMA may cover the address now. Look again.
    if (vma.detached) {
      yield* vma.vmLock.upRead();
      ctx.counters.VMA_LOCK_MISS++;
      continue;
    }
    yield* mm.rcu.readUnlock();
    return vma;
  }
  yield* mm.rcu.readUnlock();
  ctx.counters.VMA_LOCK_ABORT++;
  return null;
}
