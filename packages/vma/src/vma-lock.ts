import type { Kernel } from '@spf/machine';
import type { VmArea } from './vm-area.js';

/**
 * Per-VMA locks (Linux 6.4, include/linux/mmap_lock.h and mm/memory.c): a fault may run under the VMA's
 * own read lock instead of the mmap lock. A writer holding the mmap lock for writing marks each VMA it
 * modifies with `vma_start_write()`; the mark lasts until the mmap lock is released (which bumps
 * mm_lock_seq), so readers fail until then.
 */

/**
 * Models `vma_start_write()`: waits for readers of the VMA to leave, then marks it write-locked for the
 * rest of this mmap write-lock section. The caller holds the mmap lock for writing.
 */
export function* vmaStartWrite(vma: VmArea): Kernel<void> {
  const mmSeq = vma.vmMm.mmLockSeq.value;
  if (vma.vmLockSeq.value === mmSeq) return;
  // Linux takes the lock, stores vm_lock_seq and releases it. We store first and then wait out the
  // readers only if the lock exists at all: a reader that takes the lock later re-checks vm_lock_seq
  // after acquiring it (vmaStartRead) and backs off, so the outcome is the same without a lock object
  // for every VMA.
  yield* vma.vmLockSeq.store(mmSeq);
  if (!vma.hasVmLock) return;
  yield* vma.vmLock.downWrite();
  yield* vma.vmLock.upWrite();
}

/**
 * Models `vma_start_read()`: takes the VMA's read lock without sleeping, failing (so the caller falls back
 * to the mmap lock) if a writer has marked the VMA in the current mmap write section.
 */
export function* vmaStartRead(vma: VmArea): Kernel<boolean> {
  vma.checkLive('vma_start_read');
  const mmSeq = yield* vma.vmMm.mmLockSeq.load();
  if ((yield* vma.vmLockSeq.load()) === mmSeq) return false;
  if (!(yield* vma.vmLock.downReadTrylock())) return false;
  if ((yield* vma.vmLockSeq.load()) === (yield* vma.vmMm.mmLockSeq.load())) {
    yield* vma.vmLock.upRead();
    return false;
  }
  return true;
}

/** Models `vma_end_read()`. */
export function* vmaEndRead(vma: VmArea): Kernel<void> {
  yield* vma.vmLock.upRead();
}

/** Whether the VMA is write-locked in the current mmap write section (`vma_assert_write_locked`). */
export function vmaIsWriteLocked(vma: VmArea): boolean {
  return vma.vmLockSeq.value === vma.vmMm.mmLockSeq.value;
}
