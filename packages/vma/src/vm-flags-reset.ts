import { type Kernel, writeEffect } from '@spf/machine';
import { type VmArea, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { type VmaStartWriteSite, vmaStartWrite } from './vma-lock.js';

/**
 * Models `vm_flags_reset()` in include/linux/mm.h together with the `vma_start_write()` its callers do
 * right before it (since Linux 6.6 vm_flags_reset() only asserts the VMA write lock): write-locks `vma`,
 * then replaces all its flags with `flags`. The store happens inside the VMA's vm_sequence write section
 * (vm_write_begin/vm_write_end of the speculative-fault patches), so a speculative reader either sees the
 * old flags or retries. With `setPageProt`, `vma_set_page_prot()` recomputes vm_page_prot in the same
 * section, as mprotect_fixup() needs; callers that change no protection bit (madvise) leave it false.
 * `site` names the caller's `vma_start_write()` switch (`mprotect` or, by default, `vmFlags`).
 */
export function* vmFlagsReset(
  vma: VmArea,
  flags: number,
  setPageProt = false,
  site: VmaStartWriteSite = 'vmFlags',
): Kernel<void> {
  yield* vmaStartWrite(vma, site);
  yield* vmWriteBegin(vma);
  yield writeEffect(vma.line, 'vm_flags_reset');
  vma.vmFlags = flags;
  if (setPageProt) vma.setPageProt();
  yield* vmWriteEnd(vma);
}
