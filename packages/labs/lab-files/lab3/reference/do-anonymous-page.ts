import {
  allocZeroedUserPage,
  type ClassicVmFault,
  FAULT_FLAG_WRITE,
  pteMapLock,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  vmfLockFailed,
  vmfPteChanged,
} from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { mkPte, pfnPte, pteMkdirty, pteMkspecial, pteMkwrite, pteMkyoung, putPage } from '@spf/pagetable';
import {
  addMmCounter,
  anonVmaPrepare,
  folioAddNewAnonRmap,
  MM_ANONPAGES,
  pteAlloc,
  VM_SHARED,
  VM_WRITE,
} from '@spf/vma';

// Lab 3, part 1: do_anonymous_page() (mm/memory.c), the first touch of private anonymous memory.

/** The first touch of a page of private anonymous memory: the PTE is none and the VMA has no vm_ops. */
export function* doAnonymousPage(vmf: ClassicVmFault): Kernel<number> {
  const { vma, env, mm } = vmf;
  const pt = mm.pgd;
  if ((vmf.vmaFlags & VM_SHARED) !== 0) return VM_FAULT_SIGBUS;
  if (!(yield* pteAlloc(env, mm, vmf.pmd))) return VM_FAULT_OOM;

  // A read: map the shared zero page, read-only (a special PTE: no struct page behind it to count).
  if ((vmf.flags & FAULT_FLAG_WRITE) === 0 && env.useZeroPage) {
    let entry = pfnPte(env.mem.zeroPfn, vmf.vmaPageProt);
    if (env.pteSpecial) entry = pteMkspecial(entry);
    const locked = yield* pteMapLock(vmf);
    if (locked === null) return vmfLockFailed(vmf);
    if (!(yield* vmfPteChanged(vmf, locked.ptep))) yield* pt.setPteAt(vmf.address, locked.ptep, entry);
    yield* locked.ptl.unlock();
    return 0;
  }

  // A write: a zeroed page of our own, mapped writable and dirty.
  yield* anonVmaPrepare(vma);
  const page = yield* allocZeroedUserPage(env);
  if (page === null) return VM_FAULT_OOM;
  page.set('uptodate');
  let entry = pteMkyoung(mkPte(page, vmf.vmaPageProt));
  if ((vmf.vmaFlags & VM_WRITE) !== 0) entry = pteMkwrite(pteMkdirty(entry));

  const locked = yield* pteMapLock(vmf);
  if (locked === null) {
    yield* putPage(page);
    return vmfLockFailed(vmf);
  }
  // Another CPU may have mapped this page while we were zeroing ours: it won, ours goes back.
  if (yield* vmfPteChanged(vmf, locked.ptep)) {
    yield* locked.ptl.unlock();
    yield* putPage(page);
    return 0;
  }
  yield* addMmCounter(mm, MM_ANONPAGES, 1);
  yield* folioAddNewAnonRmap(page, vma, vmf.address);
  yield* pt.setPteAt(vmf.address, locked.ptep, entry);
  yield* locked.ptl.unlock();
  return 0;
}
