import { type Kernel, KernelFault } from '@spf/machine';
import {
  unlockPage,
  getPage,
  type Page,
  ptePfn,
  pteMkdirty,
  pteMkwrite,
  pteMkyoung,
  mkPte,
  putPage,
} from '@spf/pagetable';
import {
  addMmCounter,
  folioAddNewAnonRmap,
  folioRemoveRmap,
  isZeroPfn,
  MM_ANONPAGES,
  mmCounterFile,
  pageAnonExclusive,
  pteOffsetMapLock,
  VM_MAYSHARE,
  VM_SHARED,
  VM_WRITE,
  type VmArea,
  vmNormalPage,
} from '@spf/vma';
import { allocUserPage, allocZeroedUserPage, copyUserPage } from './alloc-page.js';
import { VM_FAULT_ERROR, VM_FAULT_NOPAGE, VM_FAULT_OOM } from './fault-flags.js';
import {
  type ClassicVmFault,
  faultIsSpeculative,
  pteMapLock,
  vmfAnonPrepare,
  speculativeFileAbort,
  vmfLockFailed,
} from './vm-fault.js';
import { doPageMkwrite } from './do-fault.js';

/**
 * `maybe_mkwrite()` in include/linux/mm.h: make the entry writable only if the VMA is. Takes the VMA or, as
 * the SPF series changed it to, the vm_flags the fault copied (`vmf->vma_flags`).
 */
export function maybeMkwrite(pte: bigint, vma: VmArea | number): bigint {
  const flags = typeof vma === 'number' ? vma : vma.vmFlags;
  return (flags & VM_WRITE) !== 0 ? pteMkwrite(pte) : pte;
}

/**
 * Models `wp_page_reuse()` in mm/memory.c: the faulting process may write the page it already maps, so the
 * PTE is made young, dirty and writable in place (`ptep_set_access_flags()`). Called and returns with the
 * PTE lock held by `vmf.ptl`; releases it.
 */
export function* wpPageReuse(vmf: ClassicVmFault, ptep: number): Kernel<number> {
  const entry = maybeMkwrite(pteMkdirty(pteMkyoung(vmf.origPte)), vmf.vmaFlags);
  yield* vmf.mm.pgd.ptepSetAccessFlags(vmf.address, ptep, entry, true);
  yield* unlockPtl(vmf);
  return 0;
}

function* unlockPtl(vmf: ClassicVmFault): Kernel<void> {
  const ptl = vmf.ptl;
  vmf.ptl = null;
  if (ptl !== null) yield* ptl.unlock();
}

/**
 * Models `wp_page_copy()` in mm/memory.c: break COW by copying. Allocate a new page (a zeroed one if the
 * old PTE mapped the zero page, else a copy of the old page, charging `cost.copyPage`), then under the
 * PTE lock, if the PTE is unchanged, clear it and flush the TLB (`ptep_clear_flush()`), map the new page
 * writable and dirty, and drop the mapping of the old page. Called without the PTE lock; `old` carries a
 * reference taken by the caller (or is null for the zero page), which is dropped here.
 *
 * A speculative fault (the SPF series' version) builds the new PTE from `vmf->vma_page_prot` and
 * `vmf->vma_flags`, locks through the design's `pte_map_lock()`, and when that fails frees the new page,
 * drops `old` and returns VM_FAULT_RETRY. Its anon_vma already exists (the designs check before).
 */
export function* wpPageCopy(vmf: ClassicVmFault, old: Page | null): Kernel<number> {
  const { vma, env, mm } = vmf;
  const pt = mm.pgd;
  const addr = vmf.address;
  // vmf_anon_prepare(): under a VMA lock without an anon_vma, prepare it under mmap_read_trylock() or retry.
  const prep = yield* vmfAnonPrepare(vmf);
  if (prep !== 0) {
    if (old !== null) yield* putPage(old);
    return prep;
  }
  let fresh: Page | null;
  if (isZeroPfn(env.mem, ptePfn(vmf.origPte)) || old === null) {
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
  if (locked === null && faultIsSpeculative(vmf)) {
    yield* putPage(fresh);
    if (old !== null) yield* putPage(old);
    return vmfLockFailed(vmf);
  }
  let toPut: Page | null = fresh;
  if (locked !== null) {
    vmf.ptl = locked.ptl;
    const cur = yield* pt.ptepGet(locked.ptep);
    if (cur === vmf.origPte) {
      if (old !== null) {
        if (!old.test('anon')) {
          yield* addMmCounter(mm, mmCounterFile(old), -1);
          yield* addMmCounter(mm, MM_ANONPAGES, 1);
        }
      } else {
        yield* addMmCounter(mm, MM_ANONPAGES, 1);
      }
      const entry = maybeMkwrite(pteMkdirty(pteMkyoung(mkPte(fresh, vmf.vmaPageProt))), vmf.vmaFlags);
      // ptep_clear_flush(): clear, then make every CPU drop the old translation before the new page is
      // mapped, so no CPU keeps writing to the old page through a stale TLB entry.
      yield* pt.ptepGetAndClear(addr, locked.ptep);
      yield* mm.pageTables.flushTlbPage(addr);
      yield* folioAddNewAnonRmap(fresh, vma, addr);
      yield* pt.setPteAt(addr, locked.ptep, entry);
      if (old !== null) yield* folioRemoveRmap(old);
      toPut = old;
      env.vmstat.cowCopies++;
      yield* unlockPtl(vmf);
      if (toPut !== null) yield* putPage(toPut);
      // The caller's reference on `old` (taken before copying) is dropped as well.
      if (old !== null) yield* putPage(old);
      return 0;
    }
    yield* unlockPtl(vmf);
  }
  yield* putPage(fresh);
  if (old !== null) yield* putPage(old);
  return 0;
}

/**
 * The shared-mapping half of `do_wp_page()` in mm/memory.c: a write-protect fault on a VM_SHARED (or
 * VM_MAYSHARE) mapping never copies. With a page and a `vm_ops->page_mkwrite`, tell the file first and
 * re-check the PTE under its lock (`wp_page_shared()`); otherwise make the PTE writable in place
 * (`wp_pfn_shared()` / `wp_page_reuse()`). Called, like do_wp_page, with the PTE lock held in `vmf.ptl`;
 * `page` is `vm_normal_page()` of `vmf.origPte`. A speculative fault gives up here (VM_FAULT_RETRY): the
 * speculative designs never start on a VMA with vm_ops. Called on a private mapping it stops the run (a
 * kernel bug: that is the half that reuses or copies).
 */
export function* wpPageShared(vmf: ClassicVmFault, page: Page | null): Kernel<number> {
  const { vma } = vmf;
  if ((vmf.vmaFlags & (VM_SHARED | VM_MAYSHARE)) === 0) {
    throw new KernelFault(
      'bug',
      `wpPageShared() on a private mapping (${vma}): a write fault there must reuse or copy the page (do_wp_page's private half)`,
    );
  }
  const ptep = vmf.pte as number;
  if (faultIsSpeculative(vmf)) {
    // wp_page_shared() would call ->page_mkwrite, which may sleep: never speculatively.
    yield* unlockPtl(vmf);
    return speculativeFileAbort(vmf, 'page-mkwrite');
  }
  if (page !== null && vma.vmOps?.pageMkwrite !== undefined) {
    // wp_page_shared(): tell the file before the page becomes writable.
    yield* getPage(page);
    yield* unlockPtl(vmf);
    const ret = yield* doPageMkwrite(vmf, page);
    if (ret === 0 || (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) !== 0) {
      yield* putPage(page);
      return ret;
    }
    // finish_mkwrite_fault(): the page is locked; re-take the PTE lock and check nothing changed.
    const locked = yield* pteOffsetMapLock(vmf.mm.pgd, vmf.pmd, vmf.address);
    if (locked === null) {
      yield* unlockPage(page);
      yield* putPage(page);
      return 0;
    }
    vmf.ptl = locked.ptl;
    const cur = yield* vmf.mm.pgd.ptepGet(locked.ptep);
    if (cur !== vmf.origPte) {
      yield* unlockPtl(vmf);
      yield* unlockPage(page);
      yield* putPage(page);
      return 0;
    }
    const r = yield* wpPageReuse(vmf, locked.ptep);
    // fault_dirty_shared_page(): the page is dirty (the file's page_mkwrite said so) and unlocked.
    page.set('dirty');
    yield* unlockPage(page);
    yield* putPage(page);
    return r;
  }
  return yield* wpPageReuse(vmf, ptep);
}

/**
 * Models `do_wp_page()` in mm/memory.c: a write to a present, write-protected PTE. Called with the PTE
 * lock held (`vmf.ptl`) and `vmf.pte` pointing at the entry.
 *
 * - Shared mappings: make the PTE writable in place, after `vm_ops->page_mkwrite` if the file wants to
 *   know (`wp_page_shared()`), or directly for a PFN mapping (`wp_pfn_shared()`).
 * - Private mappings: reuse an anonymous page that no one else references (`wp_page_reuse()`), otherwise
 *   copy it (`wp_page_copy()`): the page is shared with a parent or child after fork, is the zero page, or
 *   is a page-cache page of a private file mapping.
 *
 * A speculative fault (FAULT_FLAG_SPECULATIVE) decides on the vm_flags it copied (`vmf->vma_flags`);
 * a shared mapping has vm_ops, which the speculative designs never start on, so it gives up there
 * (VM_FAULT_RETRY) rather than call into a file.
 *
 * Simplifications: no userfaultfd write-protect, no KSM, no FAULT_FLAG_UNSHARE.
 */
export function* doWpPage(vmf: ClassicVmFault): Kernel<number> {
  const { vma, env } = vmf;
  const ptep = vmf.pte as number;
  const page = vmNormalPage(env, vma, vmf.address, vmf.origPte);
  vmf.page = page ?? undefined;
  if ((vmf.vmaFlags & (VM_SHARED | VM_MAYSHARE)) !== 0) return yield* wpPageShared(vmf, page);
  // The PageAnonExclusive() test of do_wp_page() and wp_can_reuse_anon_folio().
  if (page !== null && pageAnonExclusive(page)) {
    env.vmstat.cowReuses++;
    return yield* wpPageReuse(vmf, ptep);
  }
  if (page !== null) yield* getPage(page);
  yield* unlockPtl(vmf);
  return yield* wpPageCopy(vmf, page);
}
