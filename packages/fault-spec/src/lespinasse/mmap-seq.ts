import type { Kernel } from '@spf/machine';
import type { MmStruct } from '@spf/vma';

/**
 * Models `mmap_seq_read_start()` in include/linux/mmap_lock.h of the 2022 SPF series: the current value of
 * `mm->mmap_seq` (@spf/vma's `mm.mmSeq`, made odd by `mmap_write_lock()` and even again by
 * `mmap_write_unlock()` / `mmap_write_downgrade()`), read without waiting for a writer. An odd value means a
 * writer holds mmap_lock; the caller decides whether to give up.
 */
export function mmapSeqReadStart(mm: MmStruct): Kernel<number> {
  return mm.mmSeq.rawReadSeqcount();
}

/**
 * Models `__mmap_seq_read_check()` in include/linux/mmap_lock.h of the series: true when `mm->mmap_seq` still
 * equals `seq` (after a read barrier), i.e. no writer took mmap_lock since {@link mmapSeqReadStart}, so what
 * the speculation read of the VMA tree and the page tables is still what a reader under mmap_lock would see.
 */
export function* mmapSeqReadCheck(mm: MmStruct, seq: number): Kernel<boolean> {
  return !(yield* mm.mmSeq.readRetry(seq));
}
