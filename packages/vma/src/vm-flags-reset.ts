import type { Kernel } from '@spf/machine';
import { type VmArea, vmaSetPageProt, vmaWriteOnce, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { type VmaStartWriteSite, vmaStartWrite } from './vma-lock.js';

/**
 * Models `vm_flags_reset()` in include/linux/mm.h together with the `vma_start_write()` its callers do
 * right before it (since Linux 6.6 vm_flags_reset() only asserts the VMA write lock): write-locks `vma`,
 * then replaces all its flags with `flags`. The store happens inside the VMA's vm_sequence write section
 * (vm_write_begin/vm_write_end of the speculative-fault patches), so a speculative reader either sees the
 * old flags or retries. With `setPageProt`, `vma_set_page_prot()` recomputes vm_page_prot in the same
 * section, as mprotect_fixup() needs; callers that change no protection bit (madvise) leave it false.
 * Each field is its own store ({@link vmaWriteOnce}): vm_flags first, then vm_page_prot. `inSection`
 * runs before the section closes: SPF v12's mprotect_fixup() calls change_protection() there.
 * `site` names the caller's `vma_start_write()` switch (`mprotect` or, by default, `vmFlags`).
 */
export function* vmFlagsReset(
  vma: VmArea,
  flags: number,
  setPageProt = false,
  site: VmaStartWriteSite = 'vmFlags',
  inSection?: () => Kernel<void>,
): Kernel<void> {
  yield* vmaStartWrite(vma, site);
  yield* vmWriteBegin(vma);
  yield* vmaWriteOnce(vma, 'vmFlags', flags);
  if (setPageProt) yield* vmaSetPageProt(vma);
  if (inSection) yield* inSection();
  yield* vmWriteEnd(vma);
}
