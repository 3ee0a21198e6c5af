import {
  type ClassicVmFault,
  FAULT_FLAG_RETRY_NOWAIT,
  FAULT_FLAG_SPECULATIVE,
  pteMapLock,
  speculativeFileAbort,
  speculativeFileHooks,
  FAULT_FLAG_TRIED,
  faultFlagAllowRetryFirst,
  releaseFaultLock,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  allocUserPage,
} from '@spf/fault-classic';
import { block, type Kernel } from '@spf/machine';
import {
  lockPage,
  mkPte,
  PAGE_SIZE,
  type Page,
  pteMkyoung,
  pteNone,
  putPage,
  getPage,
  trylockPage,
  unlockPage,
  PMD_SIZE,
} from '@spf/pagetable';
import {
  addMmCounter,
  folioAddFileRmap,
  MM_FILEPAGES,
  pteAlloc,
  pteOffsetMapLock,
  VM_EXEC,
  VM_RAND_READ,
  VM_SEQ_READ,
  type VmFault,
  type VmOperations,
} from '@spf/vma';
import { type AddressSpace, folioTryGet, pageStillAllocated } from './address-space.js';
import { XaState } from './page-cache-tree.js';
import { File } from './file.js';
import type { FilemapRetryPaths, FilePin } from './filemap-retry-paths.js';
import { MMAP_LOTSAMISS } from './file-ra-state.js';
import {
  folioNrPages,
  folioPages,
  makeRactl,
  pageCacheAsyncRa,
  pageCacheRaOrder,
  pageCacheSyncRa,
  submitRead,
} from './readahead.js';

/** The `struct file` behind a fault's VMA, or null if the VMA does not map a @spf/file-backed file. */
function faultFile(vmf: VmFault): File | null {
  const f = vmf.vma.vmFile;
  if (!(f instanceof File)) return null;
  f.check('fault on vma->vm_file');
  return f;
}

/**
 * Models `maybe_unlock_mmap_for_io()` in mm/internal.h: before waiting for I/O, a fault that may retry
 * (first attempt, ALLOW_RETRY, not RETRY_NOWAIT) pins the file (`get_file()`) and drops mmap_lock or the
 * VMA lock; the caller then returns VM_FAULT_RETRY once the wait is over. Returns the pinned file
 * (Linux's `fpin`: the one given if already pinned), or null if the fault keeps its lock. The file
 * system's `dropMmapLockForIo: false` switches this off.
 */
export function* maybeUnlockMmapForIo(vmf: VmFault, fpin: File | null): Kernel<File | null> {
  if (fpin !== null) return fpin;
  const file = vmf.vma.vmFile;
  if (!(file instanceof File) || !file.inode.sb.dropMmapLockForIo) return null;
  if (faultFlagAllowRetryFirst(vmf.flags) && (vmf.flags & FAULT_FLAG_RETRY_NOWAIT) === 0) {
    file.get();
    yield* releaseFaultLock(vmf);
    return file;
  }
  return null;
}

/** The retry pieces of the file system of `file`: injected ones, or this package's. */
function retryPaths(file: File): FilemapRetryPaths {
  return file.inode.sb.retryPaths ?? builtinFilemapRetryPaths;
}

/**
 * Models `do_sync_mmap_readahead()` in mm/filemap.c (Linux 6.18) for a page-cache miss of a fault: none
 * for MADV_RANDOM or without ra_pages; the whole window from the fault for MADV_SEQUENTIAL; otherwise count
 * the miss in `mmap_miss` and, unless misses outnumber hits by MMAP_LOTSAMISS, read around the fault:
 * `ra_pages` pages starting `ra_pages / 2` before it, the last quarter lookahead (PG_readahead on the first
 * page of that quarter). An executable mapping (Linux 6.16+) reads forward from the fault instead, at most
 * `ra_pages` and never past the VMA, without lookahead. Drops mmap_lock first when it may (the I/O follows).
 *
 * A miss right after the current window reads around the fault like any other miss: `readahead-async.script`
 * of the kernel's host corpus (a fault at 5072 after the async window [3024, 5072) leaves 7119 uncached and
 * 7120 cached) shows it, on every run. An earlier rule here read forward from such a miss, fitted to an
 * older output of that script (7119 cached, 7120 not) which the committed recording, made with the harness
 * waiting for the disk to go idle after each op, does not show.
 */
export function* doSyncMmapReadahead(vmf: VmFault, file: File): Kernel<File | null> {
  const ra = file.fRa;
  const flags = vmf.vma.vmFlags;
  const paths = retryPaths(file);
  let fpin: File | null = null;
  // VM_EXEC below is already meant for random access, so MADV_RANDOM alone turns readahead off.
  if ((flags & (VM_RAND_READ | VM_EXEC)) === VM_RAND_READ || ra.raPages === 0) return fpin;
  const ractl = makeRactl(file, vmf.pgoff);
  if ((flags & VM_SEQ_READ) !== 0) {
    fpin = yield* paths.maybeUnlockMmapForIo(vmf, fpin);
    yield* pageCacheSyncRa(ractl, ra.raPages);
    return fpin;
  }
  yield* file.touchRa();
  if (ra.mmapMiss < MMAP_LOTSAMISS * 10) ra.mmapMiss++;
  if (ra.mmapMiss > MMAP_LOTSAMISS) return fpin;
  fpin = yield* paths.maybeUnlockMmapForIo(vmf, fpin);
  if ((flags & VM_EXEC) !== 0) {
    // Executable mappings (6.16+): from the fault forward, at most ra_pages, never past the VMA, with no
    // lookahead (exec_folio_order() is 0 on x86).
    const vma = vmf.vma;
    ra.order = 0;
    ra.start = Math.max(vmf.pgoff, vma.vmPgoff);
    ra.size = Math.min(ra.start + ra.raPages, vma.vmPgoff + vma.pages) - ra.start;
    ra.asyncSize = 0;
    ractl.index = ra.start;
    yield* pageCacheRaOrder(ractl, ra);
    return fpin;
  }
  ra.start = Math.max(0, vmf.pgoff - Math.floor(ra.raPages / 2));
  ra.size = ra.raPages;
  ra.asyncSize = Math.floor(ra.raPages / 4);
  ra.order = 0;
  ractl.index = ra.start;
  yield* pageCacheRaOrder(ractl, ra);
  return fpin;
}

/**
 * Models `do_async_mmap_readahead()` in mm/filemap.c: a fault found its page cached. A hit pays back one
 * miss of `mmap_miss`; a page marked PG_readahead starts the next window asynchronously (after dropping
 * mmap_lock when it may: the fault then returns VM_FAULT_RETRY and counts as major, as in Linux).
 */
export function* doAsyncMmapReadahead(vmf: VmFault, file: File, folio: Page): Kernel<File | null> {
  const ra = file.fRa;
  const paths = retryPaths(file);
  let fpin: File | null = null;
  if ((vmf.vma.vmFlags & VM_RAND_READ) !== 0 || ra.raPages === 0) return fpin;
  // 6.18 (e338d8353154): a locked folio is likely another fault's in flight; do not count the hit twice.
  if (!folio.test('locked')) {
    yield file.line.rmwEffect; // ra->mmap_miss
    if (ra.mmapMiss > 0) ra.mmapMiss--;
  }
  if (folio.test('readahead')) {
    fpin = yield* paths.maybeUnlockMmapForIo(vmf, fpin);
    yield* pageCacheAsyncRa(makeRactl(file, vmf.pgoff), folio, ra.raPages);
  }
  return fpin;
}

/** Sleeps until `page` is unlocked (`folio_wait_locked()`). */
export function* folioWaitLocked(page: Page): Kernel<void> {
  yield* block(page.mem.pageWaitQueue, () => !page.test('locked'), 'folio_wait_locked');
}

/** Sleeps until writeback of `page` has finished (`folio_wait_writeback()`). */
export function* folioWaitWriteback(page: Page): Kernel<void> {
  yield* block(page.mem.pageWaitQueue, () => !page.test('writeback'), 'folio_wait_writeback');
}

/**
 * Models `lock_folio_maybe_drop_mmap()` in mm/filemap.c: take the page lock; if it is held (typically by
 * the read in flight), drop mmap_lock before sleeping on it when the fault may retry (the pin goes to
 * `fpin.file`). Returns false only for FAULT_FLAG_RETRY_NOWAIT (the caller returns VM_FAULT_RETRY with the
 * lock still held). Simplification: the machine delivers no signal to a sleeping task, so the wait of a
 * FAULT_FLAG_KILLABLE fault (`__folio_lock_killable()`) always ends with the lock, as `__folio_lock()`
 * does; a fatal signal is seen by `do_user_addr_fault()` after the retry (`fault_signal_pending()`).
 */
export function* lockFolioMaybeDropMmap(vmf: VmFault, folio: Page, fpin: FilePin): Kernel<boolean> {
  if (yield* trylockPage(folio)) return true;
  if ((vmf.flags & FAULT_FLAG_RETRY_NOWAIT) !== 0) return false;
  fpin.file = yield* maybeUnlockMmapForIo(vmf, fpin.file);
  yield* lockPage(folio);
  return true;
}

/**
 * Models `__filemap_get_folio(mapping, index, FGP_CREAT | FGP_FOR_MMAP)`: the cached page with a
 * reference, or a new one added (not uptodate, unlocked: FGP_FOR_MMAP) for the caller to read. Null when
 * memory is exhausted.
 */
export function* filemapGetFolioCreate(mapping: AddressSpace, index: number): Kernel<Page | null> {
  for (;;) {
    const cached = yield* mapping.getFolio(index);
    if (cached !== null) return cached;
    const page = allocUserPage(mapping.host.sb.env);
    if (page === null) return null;
    page.set('locked');
    if (yield* mapping.addFolio(page, index)) {
      yield* unlockPage(page);
      return page;
    }
    yield* putPage(page);
  }
}

/**
 * Models `filemap_read_folio()` in mm/filemap.c: reads a locked, not uptodate page from the device and
 * sleeps until the completion unlocks it. Returns 0, or EIO (5) if it is still not uptodate. The page
 * comes back unlocked.
 */
export function* filemapReadFolio(file: File, page: Page): Kernel<number> {
  yield* submitRead(file, [page]);
  yield* folioWaitLocked(page);
  return page.test('uptodate') ? 0 : 5;
}

/**
 * The speculative case of `filemap_fault()` (Lespinasse's 2021 RFC, "mm: implement speculative handling in
 * filemap_fault()"; the same rule serves our model of Dufour's 2019 proposal): runs without mmap_lock inside
 * the design's file section and must not sleep, so it only fishes an existing page out of the page cache.
 * The page must be cached, not marked PG_readahead (readahead would have to start), not locked (trylock: a
 * locked page has I/O or truncation in flight), still the file's (`page->mapping`, switch
 * `pageMappingRecheck`), uptodate, and below end of file; otherwise the fault gives up (VM_FAULT_RETRY,
 * counted by the design under the reason) and the classic path does the I/O, readahead or SIGBUS. A hit
 * pays back one `mmap_miss`, as the non-speculative path does (the RFC notes that a speculation that
 * fails later makes the classic path count it a second time; so does this model). Returns the page
 * locked (VM_FAULT_LOCKED) with a reference.
 *
 * Differences from the RFC: its early returns keep the page reference taken by `find_get_page()` (a leak
 * on a rare path); here every abort drops it.
 */
function* filemapFaultSpeculative(vmf: VmFault, file: File): Kernel<number> {
  const mapping = file.mapping;
  const index = vmf.pgoff;
  const hooks = speculativeFileHooks(vmf);
  const page = yield* mapping.getFolio(index);
  file.check('speculative filemap_fault: find_get_page(mapping)');
  if (page === null) return speculativeFileAbort(vmf, 'pagecache-miss');
  if (page.test('readahead')) {
    yield* putPage(page);
    return speculativeFileAbort(vmf, 'readahead');
  }
  if (!(yield* trylockPage(page))) {
    yield* putPage(page);
    return speculativeFileAbort(vmf, 'page-locked');
  }
  let reason: 'truncated' | 'page-not-uptodate' | null = null;
  if ((hooks?.checks.pageMappingRecheck ?? true) && page.mapping !== mapping) reason = 'truncated';
  else if (!page.test('uptodate')) reason = 'page-not-uptodate';
  else {
    file.check('speculative filemap_fault: i_size_read(inode)');
    yield file.inode.line.readEffect; // i_size_read()
    if (index >= file.inode.sizePages) reason = 'truncated';
  }
  if (reason !== null) {
    yield* unlockPage(page);
    yield* putPage(page);
    return speculativeFileAbort(vmf, reason);
  }
  const ra = file.fRa;
  if ((vmf.vma.vmFlags & VM_RAND_READ) === 0 && ra.raPages > 0) {
    yield* file.touchRa();
    if (ra.mmapMiss > 0) ra.mmapMiss--;
  }
  vmf.page = page;
  return VM_FAULT_LOCKED;
}

/**
 * Models `filemap_fault()` in mm/filemap.c (Linux 6.18), the `->fault` of a file mapping:
 *
 * - past end of file: SIGBUS;
 * - page cached: `do_async_mmap_readahead()` (not on a retried fault), then lock it;
 * - not cached: a major fault (VM_FAULT_MAJOR): `do_sync_mmap_readahead()` reads around it, then the page
 *   is found (or created) and locked, which waits for the read;
 * - waiting for I/O (`lock_folio_maybe_drop_mmap()`, `maybe_unlock_mmap_for_io()`) drops mmap_lock on the
 *   first attempt; the fault then returns VM_FAULT_RETRY once the page is uptodate, and is retried with
 *   FAULT_FLAG_TRIED, finding the page cached;
 * - a page truncated meanwhile (`folio->mapping` changed) is looked up again; one still not uptodate is
 *   read synchronously (`filemap_read_folio()`);
 * - finally the size is checked again and the page is returned locked (VM_FAULT_LOCKED).
 *
 * The pieces that drop the fault lock (`maybe_unlock_mmap_for_io()`, `lock_folio_maybe_drop_mmap()`,
 * `out_retry:`) are the file system's `retryPaths` when it has some ({@link FilemapRetryPaths}, the
 * injection point of Lab 6), else this package's ({@link builtinFilemapRetryPaths}).
 * With FAULT_FLAG_SPECULATIVE it runs {@link filemapFaultSpeculative} instead (no I/O, no sleep).
 *
 * Simplifications: no `filemap_invalidate_lock` (truncation re-checks `mapping` instead), no
 * `filemap_fault_recheck_pte_none()`, no memcg, no hwpoison; fatal signals do not interrupt the lock wait.
 */
export function* filemapFault(vmf: VmFault): Kernel<number> {
  const file = faultFile(vmf);
  if (file === null) return VM_FAULT_SIGBUS;
  if ((vmf.flags & FAULT_FLAG_SPECULATIVE) !== 0) return yield* filemapFaultSpeculative(vmf, file);
  const mapping = file.mapping;
  const inode = file.inode;
  const index = vmf.pgoff;
  yield inode.line.readEffect; // i_size_read()
  if (index >= inode.sizePages) return VM_FAULT_SIGBUS;
  const paths = retryPaths(file);
  const fpin: FilePin = { file: null };
  let ret = 0;
  let folio = yield* mapping.getFolio(index);
  if (folio !== null) {
    if ((vmf.flags & FAULT_FLAG_TRIED) === 0) fpin.file = yield* doAsyncMmapReadahead(vmf, file, folio);
  } else {
    ret = VM_FAULT_MAJOR;
    fpin.file = yield* doSyncMmapReadahead(vmf, file);
  }
  for (;;) {
    if (folio === null) {
      // retry_find:
      folio = yield* filemapGetFolioCreate(mapping, index);
      if (folio === null) {
        if (fpin.file !== null) return yield* paths.outRetry(null, fpin.file, ret);
        return VM_FAULT_OOM;
      }
    }
    if (!(yield* paths.lockFolioMaybeDropMmap(vmf, folio, fpin))) {
      return yield* paths.outRetry(folio, fpin.file, ret);
    }
    if (folio.mapping !== mapping) {
      // Truncated while we slept.
      yield* unlockPage(folio);
      yield* putPage(folio);
      folio = null;
      continue;
    }
    if (!folio.test('uptodate')) {
      // page_not_uptodate:
      fpin.file = yield* paths.maybeUnlockMmapForIo(vmf, fpin.file);
      ret |= VM_FAULT_MAJOR;
      const err = yield* filemapReadFolio(file, folio);
      if (fpin.file !== null) return yield* paths.outRetry(folio, fpin.file, ret);
      yield* putPage(folio);
      if (err !== 0) return VM_FAULT_SIGBUS;
      folio = null;
      continue;
    }
    break;
  }
  if (fpin.file !== null) {
    // We had to drop the fault lock: return to do_user_addr_fault(), which finds the VMA again.
    yield* unlockPage(folio);
    return yield* paths.outRetry(folio, fpin.file, ret);
  }
  yield inode.line.readEffect; // i_size_read()
  if (index >= inode.sizePages) {
    yield* unlockPage(folio);
    yield* putPage(folio);
    return VM_FAULT_SIGBUS;
  }
  vmf.page = folio;
  return ret | VM_FAULT_LOCKED;
}

/** Models the `out_retry:` label of `filemap_fault()`: drop the page and the pinned file; VM_FAULT_RETRY. */
export function* outRetry(folio: Page | null, fpin: File | null, ret: number): Kernel<number> {
  if (folio !== null) yield* putPage(folio);
  if (fpin !== null) yield* fpin.put();
  return ret | VM_FAULT_RETRY;
}

/** This package's {@link FilemapRetryPaths}: what a file system without injected ones runs. */
export const builtinFilemapRetryPaths: FilemapRetryPaths = {
  maybeUnlockMmapForIo,
  lockFolioMaybeDropMmap,
  outRetry,
};

/**
 * Models `next_uptodate_folio()` in mm/filemap.c: advances the cursor `xas` (`xas_next_entry()`, up to
 * `endPgoff`) to the next cached page fault-around may map, and returns it locked with a reference (its index
 * is `xas.index`); null when none is left. A page is passed over if it is locked (I/O in flight), its
 * reference cannot be taken, its slot no longer holds it (`xas_reload()`: one load of the cursor's node),
 * it is not uptodate, marked PG_readahead (left for a real fault so that async readahead triggers), being
 * removed, or past end of file. Entries at indices up to `skipThrough` are passed over unexamined: the other
 * pages of a large folio already mapped whole, which Linux keeps as sibling entries of one multi-index entry
 * that `xas_find()` steps over. `onEntry` runs after each read of the tree (the speculative caller checks
 * there that the file is still alive).
 */
function* nextUptodateFolio(
  xas: XaState,
  mapping: AddressSpace,
  endPgoff: number,
  maxIdx: number,
  mappingRecheck: boolean,
  skipThrough: number,
  onEntry: (() => void) | null,
): Kernel<Page | null> {
  for (;;) {
    const folio = yield* xas.nextEntry(endPgoff);
    onEntry?.();
    if (folio === null) return null;
    if (xas.index <= skipThrough) continue;
    if (!pageStillAllocated(folio)) continue;
    if (folio.test('locked')) continue;
    if (!(yield* folioTryGet(folio))) continue;
    // Has the page moved?
    if ((yield* xas.reload()) !== folio) {
      yield* putPage(folio);
      continue;
    }
    if (!folio.test('uptodate') || folio.test('readahead')) {
      yield* putPage(folio);
      continue;
    }
    if (!(yield* trylockPage(folio))) {
      yield* putPage(folio);
      continue;
    }
    if ((mappingRecheck && folio.mapping !== mapping) || !folio.test('uptodate') || xas.index >= maxIdx) {
      yield* unlockPage(folio);
      yield* putPage(folio);
      continue;
    }
    return folio;
  }
}

/**
 * Models `filemap_map_pages()` in mm/filemap.c (Linux 6.18), the `->map_pages` fault-around calls: maps
 * every page of [startPgoff, endPgoff] (clipped to end of file) that is cached, uptodate, unlocked and not
 * marked PG_readahead into the empty PTEs of the faulting VMA, read-only unless the VMA allows writes
 * without notification, and young. Returns VM_FAULT_NOPAGE if the faulting address itself was mapped (the
 * fault is then done, a minor fault). Each page mapped counts as an mmap hit: `mmap_miss` is decreased by
 * their number. Runs under RCU (taken by `do_fault_around()`).
 *
 * The PTE table is installed (`filemap_map_pmd()`) only if the first folio found ends before the file's
 * last page (Linux 6.18's `can_map_large` test, meant to keep PMD mappings within i_size): when the first
 * cached folio of the window holds the last page and the fault's PMD has no PTE table yet, fault-around
 * maps nothing. A
 * fault past EOF whose window, clipped to EOF, holds just the last page then leaves it unmapped, where a
 * fault near an existing table maps it (conformance/host-file-outputs/fault-around-eof.script).
 *
 * A large folio of readahead (`folioPages()`) found in the window is mapped whole, pages outside the window
 * included, when it lies within i_size, the VMA and one PMD (`filemap_map_folio_range()`), except
 * speculatively. Simplifications: no PMD-sized folios, so no `filemap_map_pmd()` huge mapping; the other
 * pages of a large folio are mapped if uptodate and unlocked (Linux locks the folio once); workingset
 * (refault) pages count as hits too.
 *
 * Speculatively (FAULT_FLAG_SPECULATIVE: Lespinasse's 2021 RFC, "mm: implement speculative handling in
 * filemap_map_pages()", also our model of Dufour's 2019 proposal) the PTE table already exists (the walk
 * found it): no table is installed, and the lock is the design's `pte_map_lock()` for the faulting address,
 * which re-validates the speculation; the addresses are computed from the fault's address and pgoff (what
 * the fault saw), not re-read from the VMA. The result starts as VM_FAULT_RETRY and becomes VM_FAULT_NOPAGE
 * only if the faulting page got mapped: otherwise the whole speculative fault gives up (counted
 * `fault-around`) and the classic path (`->fault`, with I/O if need be) takes over; neighbours mapped
 * meanwhile stay mapped, as in the RFC. Touching the file after its last fput is reported
 * (`File.check()`): the design's file section must prevent it.
 */
export function* filemapMapPages(vmf: VmFault, startPgoff: number, endPgoff: number): Kernel<number> {
  const file = faultFile(vmf);
  if (file === null) return 0;
  const cvmf = vmf as ClassicVmFault;
  const { vma, mm, env } = cvmf;
  const speculative = (vmf.flags & FAULT_FLAG_SPECULATIVE) !== 0;
  const hooks = speculativeFileHooks(vmf);
  const mappingRecheck = hooks?.checks.pageMappingRecheck ?? true;
  const mapping = file.mapping;
  const maxIdx = file.inode.sizePages;
  const fileEnd = maxIdx - 1;
  if (endPgoff > fileEnd) endPgoff = fileEnd;
  let ret = 0;
  // XA_STATE(xas, &mapping->i_pages, start_pgoff): one cursor walks the whole window.
  const xas = new XaState(mapping.iPages, startPgoff);
  const onEntry = speculative ? () => file.check('speculative filemap_map_pages: mapping->i_pages') : null;
  let folio = yield* nextUptodateFolio(xas, mapping, endPgoff, maxIdx, mappingRecheck, -1, onEntry);
  if (folio === null) return speculative ? speculativeFileAbort(vmf, 'fault-around') : 0;
  // filemap_map_pmd(): install the PTE table if the PMD is still empty (never speculatively). Since
  // Linux 6.18 ("mm/memory: do not populate page table entries beyond i_size") it is called only when the
  // first folio found ends before the file's last page (`file_end >= folio_next_index(folio)`); when that
  // folio holds the last page, no table is installed, and on an empty PMD pte_offset_map_lock() below
  // finds none: nothing is mapped (the fault goes on to ->fault).
  const folioRun = folioPages(folio);
  const canMapLarge = fileEnd >= folioRun[0].index + folioRun.length; // file_end >= folio_next_index(folio)
  if (!speculative && canMapLarge && !(yield* pteAlloc(env, mm, cvmf.pmd))) {
    yield* unlockPage(folio);
    yield* putPage(folio);
    return 0;
  }
  // Speculatively the lock is taken for the faulting address and every index is placed relative to it.
  const baseAddr = speculative ? cvmf.address : vma.vmStart + (startPgoff - vma.vmPgoff) * PAGE_SIZE;
  const basePgoff = speculative ? cvmf.pgoff : startPgoff;
  const locked = speculative ? yield* pteMapLock(cvmf) : yield* pteOffsetMapLock(mm.pgd, cvmf.pmd, baseAddr);
  if (locked === null) {
    yield* unlockPage(folio);
    yield* putPage(folio);
    return speculative ? VM_FAULT_RETRY : 0;
  }
  const prot = speculative ? cvmf.vmaPageProt : vma.vmPageProt;
  let mmapMiss = 0;
  let rss = 0;
  for (;;) {
    const index = xas.index;
    const addr = baseAddr + (index - basePgoff) * PAGE_SIZE;
    const ptep = locked.ptep + (index - basePgoff) * 8;
    // filemap_map_order0_folio()
    mmapMiss++;
    if (addr === vmf.address) ret = VM_FAULT_NOPAGE;
    const cur = yield* mm.pgd.ptepGet(ptep);
    if (pteNone(cur)) {
      yield* getPage(folio);
      yield* folioAddFileRmap(folio);
      yield* mm.pgd.setPteAt(addr, ptep, pteMkyoung(mkPte(folio, prot)));
      rss++;
    } else if (addr === vmf.address) {
      // Someone else mapped it meanwhile: the fault is done anyway.
    }
    // filemap_map_folio_range(): a large folio that lies within i_size, the VMA and one PMD is mapped
    // whole, window or not ("mm/filemap: map entire large folio faultaround", 6.18 with the i_size fix).
    const run = folioNrPages(folio) > 1 ? folioPages(folio) : null;
    const head = run?.[0].index ?? index;
    let last = index;
    if (
      !speculative &&
      run !== null &&
      fileEnd >= head + run.length &&
      head >= vma.vmPgoff &&
      head + run.length <= vma.vmPgoff + vma.pages
    ) {
      const headAddr = baseAddr + (head - basePgoff) * PAGE_SIZE;
      const pmdOf = (a: number) => Math.floor(a / PMD_SIZE);
      if (pmdOf(headAddr) === pmdOf(headAddr + run.length * PAGE_SIZE - 1)) {
        for (const p of run) {
          if (p === folio || p.mapping !== mapping || !p.test('uptodate') || p.test('locked')) continue;
          const a = baseAddr + (p.index - basePgoff) * PAGE_SIZE;
          const pp = locked.ptep + (p.index - basePgoff) * 8;
          mmapMiss++;
          if (!pteNone(yield* mm.pgd.ptepGet(pp))) continue;
          if (a === vmf.address) ret = VM_FAULT_NOPAGE;
          yield* getPage(p);
          yield* folioAddFileRmap(p);
          yield* mm.pgd.setPteAt(a, pp, pteMkyoung(mkPte(p, prot)));
          rss++;
        }
        last = head + run.length - 1;
      }
    }
    yield* unlockPage(folio);
    yield* putPage(folio);
    folio = yield* nextUptodateFolio(xas, mapping, endPgoff, maxIdx, mappingRecheck, last, onEntry);
    if (folio === null) break;
  }
  if (rss > 0) yield* addMmCounter(mm, MM_FILEPAGES, rss);
  yield* locked.ptl.unlock();
  yield* file.touchRa();
  const saved = file.fRa.mmapMiss;
  file.fRa.mmapMiss = mmapMiss >= saved ? 0 : saved - mmapMiss;
  if (speculative && ret !== VM_FAULT_NOPAGE) return speculativeFileAbort(vmf, 'fault-around');
  return ret;
}

/**
 * Models `filemap_page_mkwrite()` in mm/filemap.c (what ext4's `ext4_page_mkwrite()` does for a page with
 * blocks, through `block_page_mkwrite()`): a shared mapping is about to write `vmf.page`: lock it, give up
 * (VM_FAULT_NOPAGE: the fault is retried) if it was truncated, mark it dirty, wait for writeback in flight
 * (`folio_wait_stable()`), and return it locked (VM_FAULT_LOCKED).
 */
export function* filemapPageMkwrite(vmf: VmFault): Kernel<number> {
  const file = faultFile(vmf);
  const page = vmf.page;
  if (file === null || page === undefined) return VM_FAULT_SIGBUS;
  yield* lockPage(page);
  if (page.mapping !== file.mapping || page.index >= file.inode.sizePages) {
    yield* unlockPage(page);
    return VM_FAULT_NOPAGE;
  }
  page.set('dirty');
  if (page.test('writeback')) yield* folioWaitWriteback(page);
  return VM_FAULT_LOCKED;
}

/**
 * `generic_file_vm_ops` (mm/filemap.c), which ext4's `ext4_file_vm_ops` equals for what is modelled: the
 * vm_ops a file mapping installs. Its `open` records every VMA made from a file VMA in the file's
 * `i_mmap` (Linux links it there in `vma_link_file()`), for `unmap_mapping_range()` and `folio_mkclean()`.
 */
export const filemapVmOps: VmOperations = {
  // ext4 is on the RFC's list of file types that support speculative faults.
  speculative: true,
  open(vma) {
    const f = vma.vmFile;
    if (f instanceof File) f.mapping.iMmap.add(vma);
  },
  fault: filemapFault,
  mapPages: filemapMapPages,
  pageMkwrite: filemapPageMkwrite,
  // finish_fault() maps a file folio whole (6.18) unless it passes i_size (`file_end <
  // folio_next_index(folio)`, "mm/memory: do not populate page table entries beyond i_size").
  faultFolioPages(vmf, page) {
    // An order-0 page (every page but those of mmap readahead's large folios) first: no array is made.
    if (folioNrPages(page) <= 1) return null;
    const file = vmf.vma.vmFile;
    if (!(file instanceof File)) return null;
    const run = folioPages(page);
    if (Math.ceil(file.inode.size / PAGE_SIZE) < run[0].index + run.length) return null;
    for (const p of run) {
      if (p !== page && (p.mapping !== file.mapping || !p.test('uptodate') || p.test('locked'))) return null;
    }
    return run;
  },
};
