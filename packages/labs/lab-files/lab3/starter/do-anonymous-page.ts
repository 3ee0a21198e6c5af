import { type ClassicVmFault, VM_FAULT_SIGBUS } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';

// Lab 3, part 1: do_anonymous_page() (mm/memory.c), the first touch of private anonymous memory.
//
// handle_pte_fault() calls you when the PTE of vmf.address is none and the VMA has no vm_ops. Return 0 once
// the page is mapped (the CPU then retries the access), or VM_FAULT_OOM / VM_FAULT_SIGBUS.
//
//   1. A VMA with VM_SHARED in vmf.vmaFlags never gets here in Linux: return VM_FAULT_SIGBUS.
//      Make sure the PTE table exists: pteAlloc(env, mm, vmf.pmd) from @spf/vma (false: VM_FAULT_OOM).
//   2. A read (no FAULT_FLAG_WRITE in vmf.flags) with env.useZeroPage maps the shared zero page read-only:
//      pfnPte(env.mem.zeroPfn, vmf.vmaPageProt), marked special (pteMkspecial) when env.pteSpecial.
//   3. A write gets a page of its own: anonVmaPrepare(vma), allocZeroedUserPage(env) (null: VM_FAULT_OOM),
//      page.set('uptodate'), an entry mkPte(page, vmf.vmaPageProt) that is young, and dirty and writable
//      when the VMA has VM_WRITE.
//   4. Install the entry under the PTE lock: const locked = yield* pteMapLock(vmf) (null: the table went
//      away, give your page back and return vmfLockFailed(vmf)); then mm.pgd.setPteAt(vmf.address,
//      locked.ptep, entry) and locked.ptl.unlock().
//   5. A new page is the mm's: count it in its RSS (addMmCounter(mm, MM_ANONPAGES, 1)) and in the reverse
//      map (folioAddNewAnonRmap(page, vma, vmf.address)).
//
// Every access to shared memory is a `yield*`; another CPU can run between any two of them. Two threads of
// a process may fault on the same page at the same time.

export function* doAnonymousPage(vmf: ClassicVmFault): Kernel<number> {
  // TODO: map a page at vmf.address. For now every first touch is a bus error.
  void vmf;
  return VM_FAULT_SIGBUS;
}
