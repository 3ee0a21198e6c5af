import { type ClassicVmFault, VM_FAULT_SIGBUS } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';

// Lab 3, part 2: do_wp_page() (mm/memory.c), a write to a present PTE that is write-protected.
//
// handle_pte_fault() calls you with the PTE lock held in vmf.ptl, vmf.pte pointing at the entry and
// vmf.origPte its value. You must release the lock (vmf.ptl.unlock()) on every path, then return 0 once the
// write can go ahead, or VM_FAULT_OOM.
//
//   1. page = vmNormalPage(env, vma, vmf.address, vmf.origPte) from @spf/vma (null for the zero page).
//   2. A shared mapping (VM_SHARED or VM_MAYSHARE in vmf.vmaFlags) never copies: return
//      yield* wpPageShared(vmf, page) (it releases the lock).
//   3. Reuse (wp_page_reuse()): when the page is anonymous and nobody else can see it (after fork both
//      processes map it until one of them writes), make this PTE young, dirty and writable in place:
//      mm.pgd.ptepSetAccessFlags(vmf.address, vmf.pte, entry, true). Count env.vmstat.cowReuses.
//   4. Otherwise copy (wp_page_copy()): keep a reference on the old page (getPage) and drop the lock (copying
//      takes time); allocate the new page (zeroed for the zero page, else allocUserPage + copyUserPage);
//      take the PTE lock again with pteMapLock(vmf) and re-check that the PTE is still vmf.origPte;
//      then replace the entry. Mind the TLBs of the other CPUs (mm.pageTables.flushTlbPage(address)),
//      the RSS counters, the reverse map (folioAddNewAnonRmap, folioRemoveRmap) and each page reference
//      (putPage). Count env.vmstat.cowCopies.

export function* doWpPage(vmf: ClassicVmFault): Kernel<number> {
  // TODO: let the write happen. For now the lock is released and the write is a bus error.
  const ptl = vmf.ptl;
  vmf.ptl = null;
  if (ptl !== null) yield* ptl.unlock();
  return VM_FAULT_SIGBUS;
}
