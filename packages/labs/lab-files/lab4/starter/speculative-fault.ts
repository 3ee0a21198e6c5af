import { VM_FAULT_RETRY } from '@spf/fault-classic';
import type { SpeculativeFaultContext } from '@spf/fault-spec';
import type { Kernel } from '@spf/machine';
import type { MmStruct } from '@spf/vma';

// Lab 4: the speculative attempt of Dufour's SPF v12 (handle_speculative_fault and pte_map_lock).
//
// The x86 fault entry calls handleSpeculativeFault() before it takes mmap_lock. Return VM_FAULT_RETRY to
// fall back to the classic path (always correct, never fast), or finish the fault yourself. munmap, mprotect
// and mremap may run on another CPU at any moment, and they do not wait for you: they hold mmap_lock for
// writing, which you never take. What you can rely on:
//
//   - findVmaRcu(mm, address, ctx.checks) (@spf/fault-spec) finds the VMA and takes a reference on it, so
//     it stays allocated until you putVma(vma) (@spf/vma), on every path.
//   - vma.vmSequence is a seqcount every writer of the VMA bumps (odd while it is changing it):
//     rawReadSeqcount() takes a snapshot, readRetry(snapshot) says whether it moved.
//   - page tables are freed only after a TLB-shootdown IPI that every CPU must answer; a CPU with interrupts
//     off (localIrqSave()/localIrqRestore() from @spf/machine) answers only when it turns them on again.
//   - readPageTableEntries(s) (@spf/fault-spec) reads the entries from the pgd down to the PTE ('ok',
//     'missing' or 'huge'), filling s.pmdp, s.origPmd, s.ptep, s.origPte, where s is a SpeculativeFaultState
//     you build ({ mm, address, checks: ctx.checks, counters: ctx.counters, vma, seq, ... }).
//   - vmaHasChanged(s) (@spf/fault-spec): the VMA was unlinked, or vm_sequence is no longer s.seq.
//   - handlePteFault(vmf) (@spf/fault-classic) does the rest of the fault: build a ClassicVmFault with
//     FAULT_FLAG_ORIG_PTE_VALID in flags, the walk's pmd/origPmd/pte/origPte, copies of vma.vmFlags and
//     vma.vmPageProt, and speculative: { pteMapLock } — your pte_map_lock(), which must return the locked PTE
//     ({ ptep, ptl }) or null to give up. pteLockptr(mm.pgd, pmdval) (@spf/vma) is the PTE lock.
//
// Steps: find the VMA; snapshot the sequence; give up on what v12 does not handle (vm_ops or a file, no
// anon_vma, VM_GROWSDOWN/VM_HUGETLB/VM_UFFD_*), on an address outside the VMA and on accessError(errorCode,
// vma); walk with interrupts off; re-validate the sequence; then handlePteFault with your pteMapLock.

export function* handleSpeculativeFault(
  ctx: SpeculativeFaultContext,
  mm: MmStruct,
  address: number,
  errorCode: number,
  flags: number,
): Kernel<number> {
  // TODO: the speculative attempt. For now every fault falls back to the classic path.
  void [ctx, mm, address, errorCode, flags];
  return VM_FAULT_RETRY;
}
