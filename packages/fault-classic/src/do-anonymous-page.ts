import { call, type Kernel } from '@spf/machine';
import { putPage } from '@spf/pagetable';
import { mkPte, pfnPte, pteMkdirty, pteMkspecial, pteMkwrite, pteMkyoung, pteNone } from '@spf/pagetable';
import {
  addMmCounter,
  anonVmaPrepare,
  folioAddNewAnonRmap,
  MM_ANONPAGES,
  pteAlloc,
  VM_SHARED,
  VM_WRITE,
} from '@spf/vma';
import { allocZeroedUserPage } from './alloc-page.js';
import { FAULT_FLAG_ORIG_PTE_VALID, FAULT_FLAG_WRITE, VM_FAULT_OOM, VM_FAULT_SIGBUS } from './fault-flags.js';
import { type ClassicVmFault, faultIsSpeculative, pteMapLock, vmfLockFailed } from './vm-fault.js';

/**
 * Models `vmf_pte_changed()` in mm/memory.c: under the PTE lock, has the PTE changed since the handler
 * looked at it without the lock? With FAULT_FLAG_ORIG_PTE_VALID it compares with `orig_pte`, otherwise it
 * checks that the PTE is still none.
 */
export function* vmfPteChanged(vmf: ClassicVmFault, ptep: number): Kernel<boolean> {
  const pt = vmf.mm.pgd;
  yield pt.ptepGetEffect(ptep); // ptep_get(), inline form
  const cur = pt.entry(ptep);
  if ((vmf.flags & FAULT_FLAG_ORIG_PTE_VALID) !== 0) return cur !== vmf.origPte;
  return !pteNone(cur);
}

/**
 * Models `do_anonymous_page()` in mm/memory.c: the first touch of a page of private anonymous memory.
 *
 * - A read maps the shared zero page read-only (a special PTE), unless the zero page is switched off
 *   (`env.useZeroPage`), in which case it is treated like a write, as on a kernel without one.
 * - A write (or a read without a zero page) allocates a zeroed page (charging `cost.zeroPage`), gives the
 *   VMA an anon_vma, and maps the page writable and dirty if the VMA is writable.
 *
 * Every path installs the PTE under the PTE lock only if the PTE is still none; a concurrent fault that
 * got there first wins and this one frees its page and returns 0 (the access is simply retried).
 *
 * Speculative faults (FAULT_FLAG_SPECULATIVE, as the SPF series changed this function): the flags and
 * page protection come from the copies in the vm_fault (`vmf->vma_flags`, `vmf->vma_page_prot`); no PTE
 * table is allocated (the design's page walk found one, or it did not start); the PTE is locked through the
 * design's `pte_map_lock()`, and when that fails the page is freed and the result is VM_FAULT_RETRY. The
 * anon_vma already exists (the designs abort before, when it does not), so `anon_vma_prepare()` only reads it.
 *
 * Simplifications: no large anonymous folios (mTHP), no userfaultfd, no memcg charge.
 */
export function* doAnonymousPage(vmf: ClassicVmFault): Kernel<number> {
  const { vma, env } = vmf;
  const pt = vmf.mm.pgd;
  const addr = vmf.address;
  // A shared mapping without vm_ops cannot exist in Linux; @spf/vma's shared anonymous VMAs have a shmem file.
  if ((vmf.vmaFlags & VM_SHARED) !== 0) return VM_FAULT_SIGBUS;
  if (!faultIsSpeculative(vmf) && !(yield* pteAlloc(env, vmf.mm, vmf.pmd))) return VM_FAULT_OOM;

  if ((vmf.flags & FAULT_FLAG_WRITE) === 0 && env.useZeroPage) {
    let entry = pfnPte(env.mem.zeroPfn, vmf.vmaPageProt);
    if (env.pteSpecial) entry = pteMkspecial(entry);
    const locked = yield* pteMapLock(vmf);
    if (locked === null) return vmfLockFailed(vmf);
    vmf.ptl = locked.ptl;
    if (!(yield* vmfPteChanged(vmf, locked.ptep))) {
      yield* pt.setPteAt(addr, locked.ptep, entry);
    }
    yield* locked.ptl.unlock();
    vmf.ptl = null;
    return 0;
  }

  // anon_vma_prepare() is an inline that calls __anon_vma_prepare() only for a VMA without an anon_vma.
  if (vma.anonVma === null) yield* anonVmaPrepare(vma);
  const page = yield* call(allocZeroedUserPage(env));
  if (page === null) return VM_FAULT_OOM;
  page.set('uptodate');
  let entry = pteMkyoung(mkPte(page, vmf.vmaPageProt));
  if ((vmf.vmaFlags & VM_WRITE) !== 0) entry = pteMkwrite(pteMkdirty(entry));

  const locked = yield* call(pteMapLock(vmf));
  if (locked === null) {
    yield* putPage(page);
    return vmfLockFailed(vmf);
  }
  vmf.ptl = locked.ptl;
  if (yield* vmfPteChanged(vmf, locked.ptep)) {
    yield* locked.ptl.unlock();
    vmf.ptl = null;
    yield* putPage(page);
    return 0;
  }
  yield* addMmCounter(vmf.mm, MM_ANONPAGES, 1);
  yield* folioAddNewAnonRmap(page, vma, addr);
  yield pt.setPteAtEffect(locked.ptep); // set_pte_at(), inline form
  pt.mem.write64(locked.ptep, entry);
  yield* locked.ptl.unlock();
  vmf.ptl = null;
  return 0;
}
