import { VMA_START_WRITE_SITES, type VmaStartWriteSite } from '@spf/vma';

/**
 * The safety checks of the fault side of Linux 6.4's per-VMA locks (`lock_vma_under_rcu()` in mm/memory.c
 * and `vma_start_read()` in include/linux/mm.h), each a switch of {@link PerVmaLockOptions.checks}.
 */
const READER_CHECKS = {
  mmLockSeqEarlyOut:
    'vma_start_read(): give up before the trylock when vm_lock_seq equals mm_lock_seq (a writer marked the VMA)',
  vmaTrylock:
    'vma_start_read(): down_read_trylock() on the VMA lock, never a sleeping down_read() inside rcu_read_lock()',
  vmLockSeqRecheck: 'vma_start_read(): compare vm_lock_seq with mm_lock_seq again once the VMA lock is held',
  rangeCheck: 'lock_vma_under_rcu(): the address is still inside [vm_start, vm_end) once the VMA is locked',
  detachedCheck: 'lock_vma_under_rcu(): the locked VMA has not been removed from the tree (vma->detached)',
  anonVmaCheck: 'lock_vma_under_rcu() (6.4 limit): only anonymous VMAs that already have an anon_vma',
  uffdCheck: 'lock_vma_under_rcu() (6.4 limit): no VMA registered with userfaultfd (userfaultfd_armed())',
} as const;

/** A check of the fault side (see {@link PER_VMA_LOCK_CHECKS}). */
export type PerVmaReaderCheck = keyof typeof READER_CHECKS;

/** The name of the switch of a `vma_start_write()` site: `vmaStartWrite.<site>`. */
export type VmaStartWriteCheck = `vmaStartWrite.${VmaStartWriteSite}`;

/** Every check name of {@link perVmaLock}. */
export type PerVmaLockCheck = PerVmaReaderCheck | VmaStartWriteCheck | 'vmaEndWriteAllBeforeUnlock';

/**
 * Every safety check of the per-VMA-lock design with a one-line description (what it is in the kernel):
 * the reader's checks, each `vma_start_write()` site of the writers (`vmaStartWrite.<site>`, switched in
 * @spf/vma through the mm's `vmaLocking`) and the order of `vma_end_write_all()` in `mmap_write_unlock()`.
 * The README table and the course read this list.
 */
export const PER_VMA_LOCK_CHECKS: Readonly<Record<PerVmaLockCheck, string>> = Object.freeze({
  ...READER_CHECKS,
  ...(Object.fromEntries(
    Object.entries(VMA_START_WRITE_SITES).map(([site, what]) => [
      `vmaStartWrite.${site}`,
      `vma_start_write() in ${what}`,
    ]),
  ) as Record<VmaStartWriteCheck, string>),
  vmaEndWriteAllBeforeUnlock:
    'mmap_write_unlock(): vma_end_write_all() (mm_lock_seq++) before up_write(), not after it',
});

/** Whether `name` is a check of {@link PER_VMA_LOCK_CHECKS}. */
export function isPerVmaLockCheck(name: string): name is PerVmaLockCheck {
  return Object.hasOwn(PER_VMA_LOCK_CHECKS, name);
}
