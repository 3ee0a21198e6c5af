import type { Kernel } from '@spf/machine';
import { wake, writeEffect } from '@spf/machine';
import {
  lockPage,
  PAGE_SIZE,
  type Page,
  ptePresent,
  pteMkclean,
  pteWrprotect,
  pteWrite,
  pteDirty,
  entryTablePa,
  putPage,
  trylockPage,
  unlockPage,
} from '@spf/pagetable';
import {
  Errno,
  fail,
  type MmStruct,
  MmuGather,
  ok,
  pteLockptr,
  type SysResult,
  VM_LOCKED,
  VM_SHARED,
  type VmArea,
} from '@spf/vma';
import { type AddressSpace, folioTryGet, pageStillAllocated } from './address-space.js';
import { File } from './file.js';
import { filemapGetFolioCreate, filemapReadFolio, folioWaitWriteback } from './filemap.js';
import { makeRactl, pageCacheAsyncRa, pageCacheSyncRa } from './readahead.js';

function validOffset(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * Models `filemap_get_pages()` for one page of a read: the cached page (starting async readahead on a
 * PG_readahead one), or after a miss `page_cache_sync_readahead()` and the page it brought in, or a page
 * created and read on its own. Waits until the page is uptodate. Returns it with a reference, or null
 * (EIO/ENOMEM).
 */
function* filemapGetPage(file: File, index: number, lastIndex: number): Kernel<Page | null> {
  const mapping = file.mapping;
  let folio = yield* mapping.getFolio(index);
  if (folio === null) {
    yield* pageCacheSyncRa(makeRactl(file, index), lastIndex - index);
    folio = yield* mapping.getFolio(index);
  }
  if (folio === null) {
    folio = yield* filemapGetFolioCreate(mapping, index);
    if (folio === null) return null;
  }
  if (folio.test('readahead')) {
    yield* pageCacheAsyncRa(makeRactl(file, folio.index), folio, lastIndex - folio.index);
  }
  while (!folio.test('uptodate')) {
    // filemap_update_page(): wait for the read in flight, or read it ourselves.
    yield* lockPage(folio);
    if (folio.test('uptodate')) {
      yield* unlockPage(folio);
      break;
    }
    if (folio.mapping !== mapping) {
      yield* unlockPage(folio);
      yield* putPage(folio);
      return yield* filemapGetPage(file, index, lastIndex);
    }
    if ((yield* filemapReadFolio(file, folio)) !== 0) {
      yield* putPage(folio);
      return null;
    }
  }
  return folio;
}

/**
 * Models `pread(2)` on a regular file (`filemap_read()` in mm/filemap.c): copies up to `len` bytes from
 * `pos` through the page cache, reading missing pages with readahead (`page_cache_sync_ra()`, and
 * `page_cache_async_ra()` on a PG_readahead page), and records the end of the read in `f_ra.prev_pos`.
 * Returns the bytes (fewer at end of file, none past it). EBADF if not opened for reading, EINVAL for a bad
 * offset or length.
 */
export function* fileRead(file: File, pos: number, len: number): Kernel<SysResult<Uint8Array>> {
  if (!file.readable || file.released) return fail(Errno.EBADF);
  if (!validOffset(pos) || !validOffset(len)) return fail(Errno.EINVAL);
  const inode = file.inode;
  yield* inode.touch();
  const end = Math.min(pos + len, inode.size);
  if (pos >= end) return ok(new Uint8Array(0));
  const out = new Uint8Array(end - pos);
  const lastIndex = Math.ceil(end / PAGE_SIZE);
  let at = pos;
  while (at < end) {
    const index = Math.floor(at / PAGE_SIZE);
    const page = yield* filemapGetPage(file, index, lastIndex);
    if (page === null) return fail(Errno.EIO);
    const off = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, end - at);
    yield* inode.touch();
    const limit = Math.min(n, inode.size - at);
    if (limit > 0) out.set(inode.sb.env.mem.readBytes(page.pa + off, limit), at - pos);
    yield* putPage(page);
    at += n;
  }
  file.fRa.prevPos = end;
  return ok(out);
}

/**
 * Models `pwrite(2)` on a regular file (`generic_perform_write()` with `write_begin`/`write_end` of a
 * block file system): for each page, find or create it in the cache, read it first if the write covers it
 * only partly and it holds file data, copy the bytes in, mark it uptodate and dirty; the file grows to the
 * end of the write. Mapped pages see the new bytes at once (they are the same pages). EBADF if not opened
 * for writing, EINVAL for a bad offset.
 */
export function* fileWrite(file: File, pos: number, data: Uint8Array): Kernel<SysResult<number>> {
  if (!file.writable || file.released) return fail(Errno.EBADF);
  if (!validOffset(pos) || !validOffset(pos + data.length)) return fail(Errno.EINVAL);
  const inode = file.inode;
  const mem = inode.sb.env.mem;
  let at = pos;
  const end = pos + data.length;
  while (at < end) {
    const index = Math.floor(at / PAGE_SIZE);
    const off = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, end - at);
    const page = yield* filemapGetFolioCreate(file.mapping, index);
    if (page === null) return at > pos ? ok(at - pos) : fail(Errno.ENOMEM);
    yield* lockPage(page);
    if (page.mapping !== file.mapping) {
      yield* unlockPage(page);
      yield* putPage(page);
      continue;
    }
    if (!page.test('uptodate')) {
      if (n < PAGE_SIZE && index < inode.sizePages) {
        yield* filemapReadFolio(file, page);
        yield* lockPage(page);
      } else {
        mem.zeroFrame(page.pfn);
      }
      page.set('uptodate');
    }
    mem.writeBytes(page.pa + off, data.subarray(at - pos, at - pos + n));
    yield writeEffect(page.line, 'copy_from_user');
    page.set('dirty');
    yield* unlockPage(page);
    yield* putPage(page);
    at += n;
    if (at > inode.size) {
      inode.size = at;
      yield writeEffect(inode.line, 'i_size_write');
    }
  }
  return ok(data.length);
}

/**
 * Models `folio_mkclean()` (mm/rmap.c) for one page: in every shared VMA of `i_mmap` mapping it, make the
 * PTE read-only and clean (and flush the TLB), so the next write through the mapping faults and goes
 * through `page_mkwrite` again (dirty tracking). Returns whether any PTE was dirty.
 */
export function* folioMkclean(mapping: AddressSpace, page: Page): Kernel<boolean> {
  let wasDirty = false;
  for (const vma of mapping.mappers()) {
    if ((vma.vmFlags & VM_SHARED) === 0) continue;
    const addr = vmaAddressOf(vma, page.index);
    if (addr === null) continue;
    const pt = vma.vmMm.pgd;
    const steps = pt.lookup(addr);
    const leaf = steps[steps.length - 1];
    if (leaf === undefined || leaf.level !== 1 || steps.length < 2) continue;
    const pmd = steps[steps.length - 2];
    const ptl = pteLockptr(pt, pmd.entry);
    yield* ptl.lock();
    const pte = yield* pt.ptepGet(leaf.entryPa);
    if (ptePresent(pte) && entryTablePa(pte) === page.pa && (pteWrite(pte) || pteDirty(pte))) {
      if (pteDirty(pte)) wasDirty = true;
      const old = yield* pt.ptepModifyProtStart(addr, leaf.entryPa);
      yield* pt.ptepModifyProtCommit(addr, leaf.entryPa, old, pteMkclean(pteWrprotect(old)));
      yield* ptl.unlock();
      yield* vma.vmMm.pageTables.flushTlbPage(addr);
      continue;
    }
    yield* ptl.unlock();
  }
  return wasDirty;
}

/** The address at which `vma` maps page `index` of its file, or null if it does not. */
function vmaAddressOf(vma: VmArea, index: number): number | null {
  if (index < vma.vmPgoff || index >= vma.vmPgoff + vma.pages) return null;
  return vma.vmStart + (index - vma.vmPgoff) * PAGE_SIZE;
}

/**
 * Starts writeback of one dirty page (`folio_clear_dirty_for_io()` + `folio_start_writeback()` + the
 * bio): write-protects its shared mappings, copies it to the device (the data written is the page at
 * submission) and sets PG_writeback, cleared by the completion interrupt. The page is locked by the caller.
 */
function* writeOnePage(file: File, page: Page): Kernel<void> {
  const inode = file.inode;
  if (yield* folioMkclean(file.mapping, page)) page.set('dirty');
  page.clear('dirty');
  page.set('writeback');
  const validBytes = Math.max(0, Math.min(PAGE_SIZE, inode.size - page.index * PAGE_SIZE));
  const data = new Uint8Array(PAGE_SIZE);
  data.set(inode.sb.env.mem.readBytes(page.pa, validBytes));
  const index = page.index;
  yield* inode.sb.device.submit('write', 1, function* () {
    inode.blocks.set(index, data);
    page.clear('writeback');
    yield writeEffect(page.line, 'folio_end_writeback');
    yield* wake(page.mem.pageWaitQueue, Number.POSITIVE_INFINITY);
  });
}

/**
 * Models `__filemap_fdatawrite_range()` (`do_writepages()`): starts writeback of every dirty page of
 * [start, end] (page indices) and returns the pages under writeback.
 */
export function* filemapFdatawrite(file: File, start: number, end: number): Kernel<Page[]> {
  const out: Page[] = [];
  for (const [index, page] of file.mapping.iPages.entries()) {
    if (index < start || index > end || !pageStillAllocated(page) || !page.test('dirty')) continue;
    if (!(yield* folioTryGet(page))) continue;
    yield* lockPage(page);
    if (page.mapping === file.mapping && page.test('dirty') && !page.test('writeback')) {
      yield* writeOnePage(file, page);
      out.push(page);
    }
    yield* unlockPage(page);
    yield* putPage(page);
  }
  return out;
}

/**
 * Models `vfs_fsync_range()` -> `file_write_and_wait_range()`: writes back every dirty page of pages
 * [start, end] and waits for the writes to finish. Returns 0.
 */
export function* vfsFsyncRange(file: File, start = 0, end = Number.MAX_SAFE_INTEGER): Kernel<number> {
  yield* filemapFdatawrite(file, start, end);
  for (const [index, page] of file.mapping.iPages.entries()) {
    if (index < start || index > end || !pageStillAllocated(page)) continue;
    if (page.test('writeback')) yield* folioWaitWriteback(page);
  }
  return 0;
}

/** Models `fsync(2)`: EBADF for a released file, else {@link vfsFsyncRange} of the whole file. */
export function* fileFsync(file: File): Kernel<SysResult<0>> {
  if (file.released) return fail(Errno.EBADF);
  yield* vfsFsyncRange(file);
  return ok(0);
}

/** POSIX_FADV_DONTNEED (include/uapi/linux/fadvise.h). */
export const POSIX_FADV_DONTNEED = 4;

/**
 * Models `posix_fadvise(fd, offset, len, POSIX_FADV_DONTNEED)` (`generic_fadvise()` in mm/fadvise.c):
 * starts writeback of the dirty pages of the range (without waiting), then drops from the page cache every
 * whole page of the range that is clean, not under writeback, not locked and not mapped
 * (`mapping_try_invalidate()` -> `mapping_evict_folio()`). `len` 0 means to end of file. EINVAL for bad
 * arguments. Returns 0.
 */
export function* fadviseDontneed(file: File, offset: number, len: number): Kernel<SysResult<0>> {
  if (file.released) return fail(Errno.EBADF);
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0) return fail(Errno.EINVAL);
  const endbyte = len === 0 ? Number.MAX_SAFE_INTEGER : offset + len - 1;
  const startIndex = Math.ceil(Math.max(0, offset) / PAGE_SIZE);
  const endIndex = Math.floor(endbyte / PAGE_SIZE);
  yield* filemapFdatawrite(file, Math.floor(Math.max(0, offset) / PAGE_SIZE), endIndex);
  const lastFull = endbyte === Number.MAX_SAFE_INTEGER ? endIndex : Math.floor((endbyte + 1) / PAGE_SIZE) - 1;
  const mapping = file.mapping;
  for (const [index, page] of mapping.iPages.entries()) {
    if (index < startIndex || index > Math.min(endIndex, lastFull) || !pageStillAllocated(page)) continue;
    yield* mappingEvictFolio(mapping, page);
  }
  return ok(0);
}

/** Models `mapping_evict_folio()` with the trylock of `mapping_try_invalidate()`; true if evicted. */
function* mappingEvictFolio(mapping: AddressSpace, page: Page): Kernel<boolean> {
  if (page.test('locked') || page.test('dirty') || page.test('writeback') || page.mapcount > 0) return false;
  if (!(yield* folioTryGet(page))) return false;
  // folio_trylock(); then the cache's reference and ours must be the only ones (no PTE, no reader).
  if (!(yield* trylockPage(page))) {
    yield* putPage(page);
    return false;
  }
  if (
    page.mapping !== mapping ||
    page.test('dirty') ||
    page.test('writeback') ||
    page.mapcount > 0 ||
    page.refcount > 2
  ) {
    yield* unlockPage(page);
    yield* putPage(page);
    return false;
  }
  page.clear('readahead');
  page.clear('uptodate');
  // Removed while still locked (as Linux's filemap_remove_folio() under the folio lock), so a fault that
  // takes the lock afterwards sees page->mapping cleared.
  yield* mapping.removeFolio(page);
  yield* unlockPage(page);
  yield* putPage(page);
  return true;
}

/**
 * Models `unmap_mapping_range(mapping, holebegin, holelen, even_cows = 1)` (mm/memory.c): zaps, in every
 * VMA mapping the file, the PTEs of file pages from byte `holebegin` on (to the end when `holelen` is 0),
 * private COW copies included, flushing the TLBs. Runs without mmap_lock, as Linux does under
 * `i_mmap_rwsem`.
 */
export function* unmapMappingRange(mapping: AddressSpace, holebegin: number, holelen = 0): Kernel<void> {
  const first = Math.floor(holebegin / PAGE_SIZE);
  const last = holelen === 0 ? Number.MAX_SAFE_INTEGER : Math.ceil((holebegin + holelen) / PAGE_SIZE) - 1;
  for (const vma of mapping.mappers()) {
    const vFirst = vma.vmPgoff;
    const vLast = vma.vmPgoff + vma.pages - 1;
    const from = Math.max(first, vFirst);
    const to = Math.min(last, vLast);
    if (from > to) continue;
    const start = vma.vmStart + (from - vFirst) * PAGE_SIZE;
    const end = vma.vmStart + (to - vFirst + 1) * PAGE_SIZE;
    const mm: MmStruct = vma.vmMm;
    const tlb = new MmuGather();
    yield* mm.pageTables.zapRange(tlb, vma, start, end);
    yield* mm.pageTables.tlbFinishMmu(tlb, start, end);
  }
}

/**
 * Models `truncate_inode_pages(mapping, lstart)` (mm/truncate.c): removes every page wholly past `lstart`
 * from the cache (waiting for its lock and writeback), and zeroes the tail of a partial last page.
 */
export function* truncateInodePages(mapping: AddressSpace, lstart: number): Kernel<void> {
  const inode = mapping.host;
  const mem = inode.sb.env.mem;
  const firstWhole = Math.ceil(lstart / PAGE_SIZE);
  for (const [index, page] of mapping.iPages.entries()) {
    // The list is a snapshot: a page another task removed and freed meanwhile is skipped.
    if (index < Math.floor(lstart / PAGE_SIZE) || !pageStillAllocated(page)) continue;
    if (!(yield* folioTryGet(page))) continue;
    yield* lockPage(page);
    if (page.test('writeback')) {
      yield* unlockPage(page);
      yield* folioWaitWriteback(page);
      yield* lockPage(page);
    }
    if (page.mapping !== mapping) {
      yield* unlockPage(page);
      yield* putPage(page);
      continue;
    }
    if (index >= firstWhole) {
      page.clear('dirty');
      page.clear('readahead');
      // truncate_inode_folio(): removed while still locked, so a fault that takes the lock afterwards sees
      // page->mapping cleared (unlocking first would let it map a page that is leaving the cache).
      yield* mapping.removeFolio(page);
      yield* unlockPage(page);
      yield* putPage(page);
      continue;
    }
    // The partial page: zero past the new end.
    const off = lstart % PAGE_SIZE;
    mem.writeBytes(page.pa + off, new Uint8Array(PAGE_SIZE - off));
    yield* unlockPage(page);
    yield* putPage(page);
  }
  for (const index of [...inode.blocks.keys()]) {
    if (index >= firstWhole) inode.blocks.delete(index);
  }
  const partial = Math.floor(lstart / PAGE_SIZE);
  const blk = inode.blocks.get(partial);
  if (lstart % PAGE_SIZE !== 0 && blk !== undefined) blk.fill(0, lstart % PAGE_SIZE);
}

/**
 * Models `ftruncate(2)` (`do_truncate()` -> `truncate_setsize()` + `truncate_pagecache()`): sets the size;
 * when shrinking, unmaps the cut part from every mapping (`unmap_mapping_range()` before and after
 * dropping the pages, as Linux does to catch racing faults) and drops those pages; a later touch of the
 * cut part of a mapping gets SIGBUS. EINVAL for a negative or non-integer size or a file not opened for
 * writing; EBADF for a released file.
 */
export function* fileTruncate(file: File, size: number): Kernel<SysResult<0>> {
  if (file.released) return fail(Errno.EBADF);
  if (!Number.isSafeInteger(size) || size < 0) return fail(Errno.EINVAL);
  if (!file.writable) return fail(Errno.EINVAL);
  const inode = file.inode;
  const old = inode.size;
  inode.size = size;
  yield writeEffect(inode.line, 'i_size_write');
  if (size < old) {
    const holebegin = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    yield* unmapMappingRange(file.mapping, holebegin, 0);
    yield* truncateInodePages(file.mapping, size);
    yield* unmapMappingRange(file.mapping, holebegin, 0);
  }
  return ok(0);
}

/** msync(2) flags. */
export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

/**
 * Models `msync(2)` (mm/msync.c): checks the flags and alignment (EINVAL), then for each VMA of the range
 * (a hole gives ENOMEM at the end; MS_INVALIDATE on a locked VMA, EBUSY): with MS_SYNC on a shared file
 * mapping, drops mmap_lock and writes the file's range back (`vfs_fsync_range()`), holding the file.
 * MS_ASYNC does nothing (Linux tracks dirty pages anyway).
 */
export function* sysMsync(mm: MmStruct, start: number, len: number, flags: number): Kernel<SysResult<0>> {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || !Number.isInteger(flags)) {
    return fail(Errno.EINVAL);
  }
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) !== 0) return fail(Errno.EINVAL);
  if (start % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
  if ((flags & MS_ASYNC) !== 0 && (flags & MS_SYNC) !== 0) return fail(Errno.EINVAL);
  len = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
  const end = start + len;
  if (end < start || len < 0) return fail(Errno.ENOMEM);
  if (end === start) return ok(0);
  let unmappedError = false;
  yield* mm.mmapReadLock();
  let at = start;
  for (;;) {
    const vma = mm.findVma(at);
    if (vma === null) {
      yield* mm.mmapReadUnlock();
      return fail(Errno.ENOMEM);
    }
    if (at < vma.vmStart) {
      if ((flags & MS_SYNC) !== 0) unmappedError = true;
      at = vma.vmStart;
      if (at >= end) break;
    }
    if ((flags & MS_INVALIDATE) !== 0 && (vma.vmFlags & VM_LOCKED) !== 0) {
      yield* mm.mmapReadUnlock();
      return fail(Errno.EBUSY);
    }
    const file = vma.vmFile;
    const fstart = vma.vmPgoff + (at - vma.vmStart) / PAGE_SIZE;
    const fend = fstart + (Math.min(end, vma.vmEnd) - at) / PAGE_SIZE - 1;
    at = vma.vmEnd;
    if ((flags & MS_SYNC) !== 0 && file instanceof File && (vma.vmFlags & VM_SHARED) !== 0) {
      file.get();
      yield* mm.mmapReadUnlock();
      yield* vfsFsyncRange(file, fstart, fend);
      yield* file.put();
      if (at >= end) return unmappedError ? fail(Errno.ENOMEM) : ok(0);
      yield* mm.mmapReadLock();
    } else if (at >= end) {
      break;
    }
  }
  yield* mm.mmapReadUnlock();
  return unmappedError ? fail(Errno.ENOMEM) : ok(0);
}
