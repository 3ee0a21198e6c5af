import { allocUserPage } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { PAGE_SIZE, type Page, putPage, unlockPage } from '@spf/pagetable';
import type { File } from './file.js';
import type { FileRaState } from './file-ra-state.js';

/**
 * `struct readahead_control` (include/linux/pagemap.h): one readahead request being built. `index` is the
 * next page to read (`_index`), `batch` the locked, not-uptodate pages added to the cache and not yet
 * submitted (`_nr_pages`), always contiguous from `index`.
 */
export interface ReadaheadControl {
  readonly file: File;
  readonly ra: FileRaState;
  index: number;
  batch: Page[];
}

/** `DEFINE_READAHEAD(ractl, file, &file->f_ra, mapping, index)`. */
export function makeRactl(file: File, index: number): ReadaheadControl {
  return { file, ra: file.fRa, index, batch: [] };
}

/**
 * The bio completion of a read (`mpage_end_io()` -> `folio_end_read()`): copies the file's blocks into the
 * pages, marks them uptodate and unlocks them, waking whoever waits on the page lock. A page over a bad
 * block (`Inode.badPages`) is only unlocked: it stays not uptodate (the read failed).
 */
function endRead(file: File, pages: readonly Page[]): () => Kernel<void> {
  return function* () {
    const mem = file.inode.sb.env.mem;
    for (const p of pages) {
      if (file.inode.badPages.has(p.index)) {
        yield* unlockPage(p);
        continue;
      }
      const data = file.inode.blocks.get(p.index);
      if (data === undefined) mem.zeroFrame(p.pfn);
      else mem.writeBytes(p.pa, data);
      p.set('uptodate');
      yield* unlockPage(p);
    }
  };
}

/**
 * Models `filemap_read_folio()`'s submission half and `read_pages()`: submits one read request for
 * `pages` (locked, contiguous), completed by interrupt (see {@link BlockDevice.submit}).
 */
export function* submitRead(file: File, pages: readonly Page[]): Kernel<void> {
  if (pages.length === 0) return;
  yield* file.inode.sb.device.submit('read', pages.length, endRead(file, pages));
}

/** Models `read_pages()` in mm/readahead.c: submits the batch and moves `index` past it. */
export function* readPages(ractl: ReadaheadControl): Kernel<void> {
  const batch = ractl.batch;
  if (batch.length === 0) return;
  ractl.batch = [];
  ractl.index += batch.length;
  yield* submitRead(ractl.file, batch);
}

/**
 * Models `ra_alloc_folio()` for an order-0 folio (and the body of `page_cache_ra_unbounded()`'s loop):
 * allocates a page, marks it PG_readahead if it is the marked one, and adds it locked to the cache.
 * Returns false when a page is already cached there (EEXIST) or memory is exhausted.
 */
function* raAllocFolio(ractl: ReadaheadControl, index: number, mark: boolean): Kernel<boolean> {
  const env = ractl.file.inode.sb.env;
  const page = allocUserPage(env);
  if (page === null) return false;
  page.set('locked');
  if (mark) page.set('readahead');
  const added = yield* ractl.file.mapping.addFolio(page, index);
  // The allocation's reference: read_pages() drops it once the page is in the cache (readahead_folio()).
  yield* putPage(page);
  if (!added) return false;
  ractl.batch.push(page);
  return true;
}

/**
 * Models `page_cache_ra_unbounded()` in mm/readahead.c: reads `nrToRead` pages from `ractl.index`,
 * skipping pages already cached (each one ends the current batch), and marks the page `lookaheadSize`
 * pages before the end with PG_readahead.
 */
export function* pageCacheRaUnbounded(
  ractl: ReadaheadControl,
  nrToRead: number,
  lookaheadSize: number,
): Kernel<void> {
  const mapping = ractl.file.mapping;
  const index = ractl.index;
  const mark = lookaheadSize <= nrToRead ? nrToRead - lookaheadSize : -1;
  for (let i = 0; i < nrToRead; i++) {
    if (mapping.iPages.peek(index + i) !== null || !(yield* raAllocFolio(ractl, index + i, i === mark))) {
      // Already present: kick off the current batch and continue after this page.
      yield* readPages(ractl);
      ractl.index = index + i + 1;
    }
  }
  yield* readPages(ractl);
}

/**
 * Models `do_page_cache_ra()`: {@link pageCacheRaUnbounded} clipped at end of file (nothing past the last
 * page is read).
 */
export function* doPageCacheRa(
  ractl: ReadaheadControl,
  nrToRead: number,
  lookaheadSize: number,
): Kernel<void> {
  const isize = ractl.file.inode.size;
  if (isize === 0) return;
  const endIndex = Math.floor((isize - 1) / PAGE_SIZE);
  if (ractl.index > endIndex) return;
  if (nrToRead > endIndex - ractl.index) nrToRead = endIndex - ractl.index + 1;
  yield* pageCacheRaUnbounded(ractl, nrToRead, lookaheadSize);
}

/**
 * Models `page_cache_ra_order()` for a mapping with large-folio support (ext4 since 6.16), with every folio
 * of order 0 (see the README: large folios are not modelled). Reads the window `ra.start`, `ra.size` up to
 * end of file, marking page `start + size - async_size` PG_readahead; it stops at the first page already
 * cached and leaves the rest of the window to {@link doPageCacheRa}, as Linux's fallback does.
 */
export function* pageCacheRaOrder(ractl: ReadaheadControl, ra: FileRaState): Kernel<void> {
  const start = ractl.index;
  let index = start;
  const isize = ractl.file.inode.size;
  let limit = Math.floor((isize - 1) / PAGE_SIZE);
  const mark = index + ra.size - ra.asyncSize;
  limit = Math.min(limit, index + ra.size - 1);
  ra.order = 0;
  let err = false;
  while (index <= limit) {
    if (
      ractl.file.mapping.iPages.peek(index) !== null ||
      !(yield* raAllocFolio(ractl, index, index === mark))
    ) {
      err = true;
      break;
    }
    index++;
  }
  yield* readPages(ractl);
  if (!err) return;
  ractl.index = index;
  if (ra.size > index - start) yield* doPageCacheRa(ractl, ra.size - (index - start), ra.asyncSize);
}

/** `get_init_ra_size()`: the first window for a read of `size` pages. */
export function getInitRaSize(size: number, max: number): number {
  let newsize = 1;
  while (newsize < size) newsize *= 2;
  if (newsize <= max / 32) return newsize * 4;
  if (newsize <= max / 4) return newsize * 2;
  return max;
}

/** `get_next_ra_size()`: the next window after one of `ra.size` pages. */
export function getNextRaSize(ra: FileRaState, max: number): number {
  const cur = ra.size;
  if (cur < max / 16) return 4 * cur;
  if (cur <= max / 2) return 2 * cur;
  return max;
}

/**
 * Models `page_cache_sync_ra()` in mm/readahead.c (Linux 6.18): a read(2) missed the cache at
 * `ractl.index` wanting `reqCount` pages. From the start of the file, after the previous read's page, or for
 * an oversized read: a new window of `get_init_ra_size()`; otherwise look back for a run of cached pages a
 * sequential reader would leave: none longer than the request: read just the request; else a window the
 * size of that history (doubled when the file is cached from its start) with a one-page lookahead.
 */
export function* pageCacheSyncRa(ractl: ReadaheadControl, reqCount: number): Kernel<void> {
  const ra = ractl.ra;
  const index = ractl.index;
  if (ra.raPages === 0) {
    // Readahead off: read only what was asked for.
    yield* doPageCacheRa(ractl, reqCount, 0);
    return;
  }
  const maxPages = ra.raPages;
  const prevIndex = ra.prevPos < 0 ? Number.POSITIVE_INFINITY : Math.floor(ra.prevPos / PAGE_SIZE);
  if (index === 0 || reqCount > maxPages || (index >= prevIndex && index - prevIndex <= 1)) {
    ra.start = index;
    ra.size = getInitRaSize(reqCount, maxPages);
    ra.asyncSize = ra.size > reqCount ? ra.size - reqCount : ra.size;
  } else {
    const mapping = ractl.file.mapping;
    yield* ractl.file.inode.sb.rcu.readLock();
    const miss = yield* mapping.iPages.prevMiss(index - 1, maxPages);
    yield* ractl.file.inode.sb.rcu.readUnlock();
    let contig = index - miss - 1;
    if (contig <= reqCount) {
      yield* doPageCacheRa(ractl, reqCount, 0);
      return;
    }
    if (miss === -1) contig *= 2;
    ra.start = index;
    ra.size = Math.min(contig + reqCount, maxPages);
    ra.asyncSize = 1;
  }
  ra.order = 0;
  ractl.index = ra.start;
  yield* pageCacheRaOrder(ractl, ra);
}

/**
 * Models `page_cache_async_ra()` in mm/readahead.c (Linux 6.18): a reader reached `folio`, which carries
 * PG_readahead. Clears the marker; if it is where the current window expected it (`start + size -
 * async_size`), the next window follows the current one and grows (`get_next_ra_size()`); otherwise the
 * window is rebuilt from the cached run after the folio. The whole new window is lookahead.
 */
export function* pageCacheAsyncRa(ractl: ReadaheadControl, folio: Page, reqCount: number): Kernel<void> {
  const ra = ractl.ra;
  if (ra.raPages === 0) return;
  if (folio.test('writeback')) return;
  folio.clear('readahead');
  const maxPages = ra.raPages;
  const index = ractl.index;
  const expected = ra.start + ra.size - ra.asyncSize;
  if (index === expected) {
    ra.start += ra.size;
    ra.size = Math.max(ra.size, getNextRaSize(ra, maxPages));
    ra.asyncSize = ra.size;
  } else {
    const rcu = ractl.file.inode.sb.rcu;
    yield* rcu.readLock();
    const start = yield* ractl.file.mapping.iPages.nextMiss(index + 1, maxPages);
    yield* rcu.readUnlock();
    if (start === 0 || start - index > maxPages) return;
    ra.start = start;
    ra.size = start - index;
    ra.size += reqCount;
    ra.size = getNextRaSize(ra, maxPages);
    ra.asyncSize = ra.size;
  }
  ractl.index = ra.start;
  yield* pageCacheRaOrder(ractl, ra);
}
