import { type Kernel, readEffect } from '@spf/machine';
import { VmArea } from '@spf/vma';

/**
 * The on-stack copy of a VMA in `do_user_addr_fault()` of the 2022 SPF series (`pvma = *vma;` under
 * rcu_read_lock): a snapshot of every field, taken while the VMA cannot be freed (the caller holds
 * rcu_read_lock and VMAs are freed after a grace period), and used for the rest of the speculative fault in
 * place of the VMA itself, so no reference count is needed. The snapshot is only trusted once mmap_seq is
 * found unchanged after it ({@link mmapSeqReadCheck}); a later writer is caught by the re-check under the PTE
 * lock.
 *
 * Reading the VMA is one read of its memory line (a use-after-free report if it was freed already). The
 * copy shares the original's pointers (anon_vma, file, vm_ops) as the C struct copy does; it is never
 * linked into a tree and nobody frees it.
 */
export function* vmaCopy(vma: VmArea): Kernel<VmArea> {
  yield readEffect(vma.line, 'pvma = *vma');
  vma.checkLive('speculative fault: on-stack VMA copy');
  return Object.assign(Object.create(VmArea.prototype) as VmArea, vma);
}
