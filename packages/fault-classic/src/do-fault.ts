import { call, type Kernel } from '@spf/machine';
import {
  getPage,
  lockPage,
  mkPte,
  PAGE_SIZE,
  type Page,
  pteMkdirty,
  pteMkyoung,
  pteNone,
  putPage,
  trylockPage,
  unlockPage,
  PTRS_PER_TABLE,
} from '@spf/pagetable';
import {
  addMmCounter,
  folioAddFileRmap,
  folioAddNewAnonRmap,
  type LockedPte,
  MM_ANONPAGES,
  mmCounterFile,
  pteAlloc,
  pteOffsetMapLock,
  VM_SHARED,
  type VmArea,
  type VmOperations,
} from '@spf/vma';
import { allocUserPage, copyUserPage } from './alloc-page.js';
import { vmfPteChanged } from './do-anonymous-page.js';
import { maybeMkwrite } from './do-wp-page.js';
import {
  FAULT_FLAG_MKWRITE,
  FAULT_FLAG_WRITE,
  VM_FAULT_DONE_COW,
  VM_FAULT_ERROR,
  VM_FAULT_LOCKED,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
} from './fault-flags.js';
import { shmemVmOps } from './shmem-fault.js';
import type { FaultEnv } from './fault-env.js';
import { DEFAULT_FAULT_AROUND_BYTES } from './fault-env.js';
import {
  type ClassicVmFault,
  faultIsSpeculative,
  pteMapLock,
  speculativeFileAbort,
  speculativeFileHooks,
  vmfAnonPrepare,
} from './vm-fault.js';

/**
 * The vm_ops a fault on `vma` goes through: the VMA's own, or for a shared anonymous mapping (which
 * @spf/vma backs with a `ShmemZeroFile` and no vm_ops) the built-in shmem operations, as
 * `shmem_zero_setup()` installs `shmem_anon_vm_ops` in Linux. Null means an anonymous VMA
 * (`vma_is_anonymous()`).
 */
export function faultOps(vma: VmArea): VmOperations | null {
  if (vma.vmOps !== null) return vma.vmOps;
  if (vma.vmFile !== null && (vma.vmFlags & VM_SHARED) !== 0) return shmemVmOps;
  return null;
}

function faultPage(vmf: ClassicVmFault): Page | null {
  return vmf.page ?? null;
}

/**
 * Models `__do_fault()` in mm/memory.c: calls `vm_ops->fault`, which returns the page in `vmf.page` with a
 * reference; unless it says VM_FAULT_LOCKED, the page is locked here. Error, NOPAGE, RETRY and DONE_COW
 * results are passed up unchanged (on RETRY the handler has already released the mmap lock).
 *
 * A speculative fault (Lespinasse's 2021 RFC, "mm: implement speculative handling in __do_fault()"; Dufour's
 * design with `fileVmas`) calls `->fault` inside the design's file section ({@link SpeculativeFileHooks}:
 * RCU plus an mmap_seq check for Lespinasse, nothing for Dufour, whose VMA reference holds the file), does
 * not preallocate a table (it only runs on an existing one), and never sleeps on the page lock: a page not
 * returned locked is trylocked, and a busy one ends the attempt.
 */
export function* doFaultCall(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  if (ops.fault === undefined) return VM_FAULT_SIGBUS;
  // Linux preallocates the PTE table here when the PMD is empty, so that finish_fault() does not
  // allocate with the page locked; pteAllocFault in finishFault gives the same result.
  const spec = speculativeFileHooks(vmf);
  let ret: number;
  if (spec !== null) {
    if (!(yield* spec.fileAccessBegin(vmf))) return VM_FAULT_RETRY;
    ret = yield* call(ops.fault(vmf));
    yield* spec.fileAccessEnd(vmf);
  } else if (faultIsSpeculative(vmf)) {
    return VM_FAULT_RETRY;
  } else {
    ret = yield* call(ops.fault(vmf));
  }
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY | VM_FAULT_DONE_COW)) !== 0) return ret;
  const page = faultPage(vmf);
  if (page === null) {
    throw new TypeError(
      `vm_ops->fault of ${vmf.vma} returned ${ret} without a page in vmf.page; return VM_FAULT_NOPAGE or set vmf.page to a @spf/pagetable Page`,
    );
  }
  if ((ret & VM_FAULT_LOCKED) === 0) {
    if (spec === null) yield* lockPage(page);
    else if (!(yield* trylockPage(page))) {
      yield* putPage(page);
      return speculativeFileAbort(vmf, 'page-locked');
    }
  }
  return ret;
}

/**
 * Models `set_pte_range()` in mm/memory.c for one page: build the PTE from `vm_page_prot` (dirty and
 * writable for a write fault, if the VMA allows), add the reverse mapping (a new anonymous page for a COW
 * copy, a file mapping otherwise) and store it. Called with the PTE lock held.
 */
export function* setPteRange(vmf: ClassicVmFault, page: Page, ptep: number): Kernel<void> {
  const { vma } = vmf;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  let entry = pteMkyoung(mkPte(page, vma.vmPageProt));
  if (write) entry = maybeMkwrite(pteMkdirty(entry), vma);
  if (write && (vma.vmFlags & VM_SHARED) === 0) yield* folioAddNewAnonRmap(page, vma, vmf.address);
  else yield* folioAddFileRmap(page);
  yield* vmf.mm.pgd.setPteAt(vmf.address, ptep, entry);
}

/**
 * Models `finish_fault()` in mm/memory.c: map the page a file fault produced (`vmf.cowPage` for a private
 * write, else `vmf.page`). Allocates the PTE table if needed, takes the PTE lock, and maps the page only if
 * the PTE is still none; otherwise returns VM_FAULT_NOPAGE (a concurrent fault won). Updates the RSS
 * counter the page belongs to. The page's reference passes to the page table on success. A file page of a
 * large folio (`vm_ops->faultFolioPages`) is mapped with its whole folio when it fits (Linux 6.18).
 *
 * A speculative fault ("mm: implement speculative fault handling in finish_fault()", Lespinasse's 2021 RFC)
 * neither reads the PMD nor allocates a table: it takes the PTE lock through the design's `pte_map_lock()`,
 * which re-validates the speculation (Dufour: `vma_has_changed()`; Lespinasse: mmap_seq); if that fails the
 * fault returns VM_FAULT_RETRY and the page stays in the page cache, unmapped.
 */
export function* finishFault(vmf: ClassicVmFault): Kernel<number> {
  const cow = (vmf.flags & FAULT_FLAG_WRITE) !== 0 && (vmf.vmaFlags & VM_SHARED) === 0;
  const page = cow ? vmf.cowPage : faultPage(vmf);
  if (page === null) return VM_FAULT_SIGBUS;
  const speculative = faultIsSpeculative(vmf);
  if (!speculative && !(yield* pteAlloc(vmf.env, vmf.mm, vmf.pmd))) return VM_FAULT_OOM;
  const locked = speculative
    ? yield* pteMapLock(vmf)
    : yield* pteOffsetMapLock(vmf.mm.pgd, vmf.pmd, vmf.address);
  if (locked === null) return speculative ? VM_FAULT_RETRY : VM_FAULT_NOPAGE;
  if (!cow && !speculative) {
    const whole = yield* finishFaultFolio(vmf, page, locked);
    if (whole) return 0;
  }
  vmf.ptl = locked.ptl;
  let ret = 0;
  if (yield* vmfPteChanged(vmf, locked.ptep)) {
    ret = VM_FAULT_NOPAGE;
  } else {
    yield* setPteRange(vmf, page, locked.ptep);
    yield* addMmCounter(vmf.mm, cow ? MM_ANONPAGES : mmCounterFile(page), 1);
  }
  vmf.ptl = null;
  yield* locked.ptl.unlock();
  return ret;
}

/**
 * The large-folio branch of `finish_fault()` (Linux 6.18, "mm/fault: try to map the entire file folio in
 * finish_fault()"): a file page of a large folio (`vm_ops->faultFolioPages`) is mapped with its whole folio
 * when the folio lies within the VMA and the PTE table of the fault and all its PTEs are none; otherwise
 * (returns false) the caller maps the one page. Called with the PTE lock of the fault (`locked`) held; on
 * success it has mapped the folio, counted its pages and dropped the lock.
 */
function* finishFaultFolio(vmf: ClassicVmFault, page: Page, locked: LockedPte): Kernel<boolean> {
  const run = vmf.vma.vmOps?.faultFolioPages?.(vmf, page) ?? null;
  if (run === null || run.length <= 1) return false;
  const nr = run.length;
  const idx = run.indexOf(page);
  const vmaOff = vmf.pgoff - vmf.vma.vmPgoff;
  const pteOff = Math.floor(vmf.address / PAGE_SIZE) % PTRS_PER_TABLE;
  if (idx < 0 || vmaOff < idx || vmaOff + (nr - idx) > vmf.vma.pages || pteOff < idx) return false;
  if (pteOff + (nr - idx) > PTRS_PER_TABLE) return false;
  const pt = vmf.mm.pgd;
  const ptep0 = locked.ptep - idx * 8;
  for (let i = 0; i < nr; i++) if (!pteNone(yield* pt.ptepGet(ptep0 + i * 8))) return false;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  const addr0 = vmf.address - idx * PAGE_SIZE;
  for (let i = 0; i < nr; i++) {
    const p = run[i];
    // set_pte_range() for the whole folio: every entry as the faulting one (young; dirty and writable
    // for a write fault, if the VMA allows). The faulting page's reference passes to the table.
    if (p !== page) yield* getPage(p);
    let entry = pteMkyoung(mkPte(p, vmf.vma.vmPageProt));
    if (write) entry = maybeMkwrite(pteMkdirty(entry), vmf.vma);
    yield* folioAddFileRmap(p);
    yield* pt.setPteAt(addr0 + i * PAGE_SIZE, ptep0 + i * 8, entry);
  }
  yield* addMmCounter(vmf.mm, mmCounterFile(page), nr);
  yield* locked.ptl.unlock();
  return true;
}

/**
 * Models `do_fault_around()` in mm/memory.c: asks `->map_pages` to map the cached neighbours of the
 * faulting page, within the `fault_around_bytes` window (default 64 KiB: 16 pages) aligned down to its
 * size, clipped to the VMA and to the PTE table of the fault. Runs under RCU, as Linux does. Returns the
 * hook's result: VM_FAULT_NOPAGE when the faulting page itself got mapped. A speculative fault runs the
 * hook inside the design's file section; its `->map_pages` returns VM_FAULT_RETRY unless it mapped the
 * faulting page, and {@link doReadFault} then gives up (Lespinasse's 2021 RFC).
 */
export function* doFaultAround(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  if (ops.mapPages === undefined) return 0;
  const nrPages = faultAroundPages(vmf.env);
  const pteOff = Math.floor(vmf.address / PAGE_SIZE) % PTRS_PER_TABLE;
  const vmaOff = vmf.pgoff - vmf.vma.vmPgoff;
  const fromPte = Math.max(pteOff - (pteOff % nrPages), pteOff - Math.min(pteOff, vmaOff));
  const toPte = Math.min(fromPte + nrPages, PTRS_PER_TABLE, pteOff + vmf.vma.pages - vmaOff) - 1;
  const rcu = vmf.mm.rcu;
  const spec = speculativeFileHooks(vmf);
  yield* rcu.readLock();
  let ret: number;
  if (spec !== null) {
    // "mm: implement speculative handling in do_fault_around()": the design's file section (Lespinasse:
    // mmap_seq still unchanged, so vm_file is still the VMA's and RCU keeps it) around ->map_pages.
    if (!(yield* spec.fileAccessBegin(vmf))) {
      yield* rcu.readUnlock();
      return VM_FAULT_RETRY;
    }
    ret = yield* ops.mapPages(vmf, vmf.pgoff + fromPte - pteOff, vmf.pgoff + toPte - pteOff);
    yield* spec.fileAccessEnd(vmf);
  } else {
    ret = yield* ops.mapPages(vmf, vmf.pgoff + fromPte - pteOff, vmf.pgoff + toPte - pteOff);
  }
  yield* rcu.readUnlock();
  return ret;
}

/** `fault_around_pages`: `fault_around_bytes` / PAGE_SIZE, rounded down to a power of two (at least 1). */
export function faultAroundPages(env: FaultEnv): number {
  const bytes = env.faultAroundBytes ?? DEFAULT_FAULT_AROUND_BYTES;
  let pages = 1;
  while (pages * 2 * PAGE_SIZE <= bytes) pages *= 2;
  return pages;
}

/**
 * Models `should_fault_around()` in mm/memory.c: only with a `->map_pages` hook and a window of more
 * than one page (userfaultfd, which also disables it, is not modelled).
 */
export function shouldFaultAround(vmf: ClassicVmFault, ops: VmOperations): boolean {
  return ops.mapPages !== undefined && faultAroundPages(vmf.env) > 1;
}

/**
 * Models `do_read_fault()` in mm/memory.c: a read of a file page that is not mapped. First fault-around
 * (`do_fault_around()`): if it mapped the faulting page, the fault is done. Otherwise gets the page from
 * `->fault` and maps it. On failure to map, drops the fault's page reference.
 */
export function* doReadFault(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  if (shouldFaultAround(vmf, ops)) {
    const around = yield* call(doFaultAround(vmf, ops));
    if (around !== 0) return around;
  }
  let ret = yield* call(doFaultCall(vmf, ops));
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) return ret;
  const page = faultPage(vmf) as Page;
  ret |= yield* call(finishFault(vmf));
  yield* unlockPage(page);
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) yield* putPage(page);
  return ret;
}

/**
 * Models `do_cow_fault()` in mm/memory.c: a write to a private file mapping whose page is not mapped.
 * Prepares the anon_vma (`vmf_anon_prepare()`: under a VMA lock, with `mmap_read_trylock()`, or
 * VM_FAULT_RETRY). Allocates the private copy first, gets the file page from `->fault`, copies it (charging
 * `cost.copyPage`), and maps the copy as an anonymous page; the file page's reference is dropped.
 */
export function* doCowFault(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  const prep = yield* vmfAnonPrepare(vmf);
  if (prep !== 0) return prep;
  const cow = allocUserPage(vmf.env);
  if (cow === null) return VM_FAULT_OOM;
  vmf.cowPage = cow;
  let ret = yield* call(doFaultCall(vmf, ops));
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) {
    yield* putPage(cow);
    vmf.cowPage = null;
    return ret;
  }
  if ((ret & VM_FAULT_DONE_COW) !== 0) return ret;
  const page = faultPage(vmf) as Page;
  yield* copyUserPage(vmf.env, cow, page);
  cow.set('uptodate');
  ret |= yield* call(finishFault(vmf));
  yield* unlockPage(page);
  yield* putPage(page);
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) {
    yield* putPage(cow);
    vmf.cowPage = null;
  }
  return ret;
}

/**
 * Models `do_page_mkwrite()` in mm/memory.c: tells the file that a page is about to become writable
 * (`vm_ops->page_mkwrite`), with FAULT_FLAG_MKWRITE set for the call. On success the page comes back
 * locked and the result has VM_FAULT_LOCKED (the hook may lock it itself and say so, or it is locked here;
 * a page truncated meanwhile gives VM_FAULT_NOPAGE). Error or NOPAGE results are returned as they are,
 * with the page unlocked. Without a hook it returns 0 (Linux's callers test for the hook first).
 */
export function* doPageMkwrite(vmf: ClassicVmFault, page: Page): Kernel<number> {
  const ops = faultOps(vmf.vma);
  if (ops?.pageMkwrite === undefined) return 0; // callers only call it when the hook exists
  const old = vmf.flags;
  vmf.flags = old | FAULT_FLAG_MKWRITE;
  vmf.page = page;
  let ret = yield* ops.pageMkwrite(vmf);
  vmf.flags = old;
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) !== 0) return ret;
  if ((ret & VM_FAULT_LOCKED) === 0) {
    yield* lockPage(page);
    if (page.mapping === null) {
      yield* unlockPage(page);
      return VM_FAULT_NOPAGE;
    }
    ret |= VM_FAULT_LOCKED;
  }
  return ret;
}

/**
 * Models `do_shared_fault()` in mm/memory.c: a write to a shared file mapping whose page is not mapped.
 * Gets the page, lets the file know it will be written (`->page_mkwrite`), then maps it writable and
 * dirty. (Linux also balances dirty pages afterwards, `fault_dirty_shared_page()`; not modelled.)
 */
export function* doSharedFault(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  let ret = yield* call(doFaultCall(vmf, ops));
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) return ret;
  const page = faultPage(vmf) as Page;
  if (ops.pageMkwrite !== undefined) {
    yield* unlockPage(page);
    const tmp = yield* doPageMkwrite(vmf, page);
    if (tmp === 0 || (tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) !== 0) {
      yield* putPage(page);
      return tmp;
    }
  }
  ret |= yield* call(finishFault(vmf));
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) !== 0) {
    yield* unlockPage(page);
    yield* putPage(page);
    return ret;
  }
  page.set('dirty');
  yield* unlockPage(page);
  return ret;
}

/**
 * Models `do_fault()` in mm/memory.c: a fault on a not-present PTE of a VMA with vm_ops. Without a
 * `->fault` hook the access gets SIGBUS; otherwise reads go to {@link doReadFault}, private writes to
 * {@link doCowFault} and shared writes to {@link doSharedFault}.
 *
 * Speculatively (FAULT_FLAG_SPECULATIVE, a design with file hooks): reads and private writes go on, with the
 * changes above; a shared write gives up (`->page_mkwrite` is never called speculatively: neither Lespinasse's
 * 2021 RFC, whose `vma_can_speculate()` refuses it, nor our model of Dufour's 2019 proposal, whose attempt
 * never sleeps, does it).
 */
export function* doFault(vmf: ClassicVmFault, ops: VmOperations): Kernel<number> {
  if (ops.fault === undefined) return faultIsSpeculative(vmf) ? VM_FAULT_RETRY : VM_FAULT_SIGBUS;
  if ((vmf.flags & FAULT_FLAG_WRITE) === 0) return yield* doReadFault(vmf, ops);
  if ((vmf.vmaFlags & VM_SHARED) === 0) return yield* doCowFault(vmf, ops);
  // A speculative shared write would need ->page_mkwrite, which may sleep: neither design speculates it.
  if (faultIsSpeculative(vmf)) return speculativeFileAbort(vmf, 'page-mkwrite');
  return yield* doSharedFault(vmf, ops);
}
