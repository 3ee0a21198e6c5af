import {
  allocUserPage,
  allocZeroedUserPage,
  type ClassicVmFault,
  copyUserPage,
  maybeMkwrite,
  pteMapLock,
  VM_FAULT_OOM,
  wpPageShared,
} from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { getPage, mkPte, type Page, ptePfn, pteMkdirty, pteMkyoung, putPage } from '@spf/pagetable';
import {
  addMmCounter,
  anonVmaPrepare,
  folioAddNewAnonRmap,
  folioRemoveRmap,
  isZeroPfn,
  MM_ANONPAGES,
  mmCounterFile,
  pageAnonExclusive,
  VM_MAYSHARE,
  VM_SHARED,
  vmNormalPage,
} from '@spf/vma';

// Lab 3, part 2: do_wp_page() (mm/memory.c), a write to a present, write-protected PTE.

/** Drops the PTE lock the fault holds (`vmf.ptl`). */
function* unlockPtl(vmf: ClassicVmFault): Kernel<void> {
  const ptl = vmf.ptl;
  vmf.ptl = null;
  if (ptl !== null) yield* ptl.unlock();
}

/** A write to a present, write-protected PTE. Called with the PTE lock held in `vmf.ptl`. */
export function* doWpPage(vmf: ClassicVmFault): Kernel<number> {
  const { vma, env } = vmf;
  const page = vmNormalPage(env, vma, vmf.address, vmf.origPte);
  if ((vmf.vmaFlags & (VM_SHARED | VM_MAYSHARE)) !== 0) return yield* wpPageShared(vmf, page);

  // wp_page_reuse(): nobody else maps this anonymous page, so make our PTE writable in place.
  if (page !== null && pageAnonExclusive(page)) {
    env.vmstat.cowReuses++;
    const entry = maybeMkwrite(pteMkdirty(pteMkyoung(vmf.origPte)), vmf.vmaFlags);
    yield* vmf.mm.pgd.ptepSetAccessFlags(vmf.address, vmf.pte as number, entry, true);
    yield* unlockPtl(vmf);
    return 0;
  }
  if (page !== null) yield* getPage(page);
  yield* unlockPtl(vmf);
  return yield* wpPageCopy(vmf, page);
}

/**
 * wp_page_copy(): break COW. Called without the PTE lock; `old` carries a reference taken by the caller
 * (null for the zero page), dropped here.
 */
function* wpPageCopy(vmf: ClassicVmFault, old: Page | null): Kernel<number> {
  const { vma, env, mm } = vmf;
  const pt = mm.pgd;
  yield* anonVmaPrepare(vma);
  let fresh: Page | null;
  if (old === null || isZeroPfn(env.mem, ptePfn(vmf.origPte))) {
    fresh = yield* allocZeroedUserPage(env);
  } else {
    fresh = allocUserPage(env);
    if (fresh !== null) yield* copyUserPage(env, fresh, old);
  }
  if (fresh === null) {
    if (old !== null) yield* putPage(old);
    return VM_FAULT_OOM;
  }
  fresh.set('uptodate');
  const locked = yield* pteMapLock(vmf);
  if (locked !== null) {
    vmf.ptl = locked.ptl;
    // Someone else may have fixed this PTE while we copied without the lock: then it is theirs.
    if ((yield* pt.ptepGet(locked.ptep)) === vmf.origPte) {
      if (old === null) {
        yield* addMmCounter(mm, MM_ANONPAGES, 1);
      } else if (!old.test('anon')) {
        yield* addMmCounter(mm, mmCounterFile(old), -1);
        yield* addMmCounter(mm, MM_ANONPAGES, 1);
      }
      const entry = maybeMkwrite(pteMkdirty(pteMkyoung(mkPte(fresh, vmf.vmaPageProt))), vmf.vmaFlags);
      // ptep_clear_flush(): no CPU may keep the old page in its TLB once the new one is mapped.
      yield* pt.ptepGetAndClear(vmf.address, locked.ptep);
      yield* mm.pageTables.flushTlbPage(vmf.address);
      yield* folioAddNewAnonRmap(fresh, vma, vmf.address);
      yield* pt.setPteAt(vmf.address, locked.ptep, entry);
      if (old !== null) yield* folioRemoveRmap(old);
      env.vmstat.cowCopies++;
      yield* unlockPtl(vmf);
      if (old !== null) {
        yield* putPage(old); // the mapping's reference
        yield* putPage(old); // the one taken before copying
      }
      return 0;
    }
    yield* unlockPtl(vmf);
  }
  yield* putPage(fresh);
  if (old !== null) yield* putPage(old);
  return 0;
}
