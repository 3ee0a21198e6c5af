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
 * The pages of each large folio readahead allocated, by page: a folio of order n is modelled as 2^n order-0
 * pages of consecutive indices that share their PG_readahead mark (set and cleared together). Pages not in
 * the map are order-0 folios.
 */
const largeFolios = new WeakMap<Page, readonly Page[]>();

/** The pages of the folio `page` belongs to (itself alone for an order-0 folio). */
export function folioPages(page: Page): readonly Page[] {
  return largeFolios.get(page) ?? [page];
}

/** `folio_nr_pages()`. */
export function folioNrPages(page: Page): number {
  return largeFolios.get(page)?.length ?? 1;
}

/** `folio_clear_readahead()`: clears PG_readahead on every page of the folio. */
export function folioClearReadahead(page: Page): void {
  for (const p of folioPages(page)) p.clear('readahead');
}

/**
 * Models `ra_alloc_folio()` (and, for order 0, the body of `page_cache_ra_unbounded()`'s loop): allocates a
 * folio of `2^order` pages at `index`, marks it PG_readahead if it holds `mark` (`index ==
 * round_down(mark, 1 << order)`), and adds it locked to the cache. Returns false when a page is already
 * cached in its range (EEXIST) or memory is exhausted; then nothing is added.
 */
function* raAllocFolio(ractl: ReadaheadControl, index: number, mark: number, order = 0): Kernel<boolean> {
  const env = ractl.file.inode.sb.env;
  const mapping = ractl.file.mapping;
  const nr = 2 ** order;
  for (let i = 0; i < nr; i++) if (mapping.iPages.peek(index + i) !== null) return false;
  const pages: Page[] = [];
  for (let i = 0; i < nr; i++) {
    const page = allocUserPage(env);
    if (page === null) {
      for (const p of pages) yield* putPage(p);
      return false;
    }
    pages.push(page);
  }
  const marked = index === mark - (mark % nr);
  for (const page of pages) {
    page.set('locked');
    if (marked) page.set('readahead');
    if (nr > 1) largeFolios.set(page, pages);
  }
  let added = 0;
  for (let i = 0; i < nr; i++) {
    if (!(yield* mapping.addFolio(pages[i], index + i))) break;
    added++;
  }
  // The allocation's reference: read_pages() drops it once the page is in the cache (readahead_folio()).
  for (const p of pages) yield* putPage(p);
  if (added < nr) {
    // Another task filled a slot meanwhile: give back what was added (filemap_add_folio() is all or nothing).
    for (let i = 0; i < added; i++) {
      pages[i].clear('locked');
      yield* mapping.removeFolio(pages[i]);
    }
    return false;
  }
  ractl.batch.push(...pages);
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
    if (mapping.iPages.peek(index + i) !== null || !(yield* raAllocFolio(ractl, index + i, index + mark))) {
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

/** MAX_PAGECACHE_ORDER on x86-64 (HPAGE_PMD_ORDER): the largest folio ext4's page cache takes. */
export const MAX_PAGECACHE_ORDER = 9;

/**
 * Models `page_cache_ra_order()` in mm/readahead.c (Linux 6.18) for a mapping with large-folio support (ext4
 * since 6.16): reads the window `ra.start`, `ra.size` up to end of file in folios of order `ra.order`
 * (capped by MAX_PAGECACHE_ORDER and `ilog2(ra.size)`; smaller where the index is not aligned or the folio
 * would pass the window's end), marking PG_readahead the folio that holds page `start + size - async_size`.
 * It stops at the first folio whose range is already cached and leaves the rest of the window to
 * {@link doPageCacheRa} (order 0), as Linux's fallback does.
 *
 * Simplification: a large folio is its pages sharing the PG_readahead mark ({@link folioPages}); locking,
 * uptodate, mapping and eviction stay per page (so `evict` of a folio with one page mapped drops its other
 * pages, where Linux keeps the whole folio; the host harness refuses such an eviction anyway).
 */
export function* pageCacheRaOrder(ractl: ReadaheadControl, ra: FileRaState): Kernel<void> {
  const start = ractl.index;
  let index = start;
  const isize = ractl.file.inode.size;
  let limit = Math.floor((isize - 1) / PAGE_SIZE);
  const mark = index + ra.size - ra.asyncSize;
  limit = Math.min(limit, index + ra.size - 1);
  const newOrder = Math.min(MAX_PAGECACHE_ORDER, ra.order, ra.size > 0 ? Math.floor(Math.log2(ra.size)) : 0);
  ra.order = newOrder;
  let err = false;
  while (index <= limit) {
    let order = newOrder;
    // Align with smaller folios where the index is not aligned (__ffs(index)), and none past the end.
    if (index % 2 ** order !== 0) order = lowestSetBit(index);
    while (order > 0 && index + 2 ** order - 1 > limit) order--;
    if (!(yield* raAllocFolio(ractl, index, mark, order))) {
      err = true;
      break;
    }
    index += 2 ** order;
  }
  yield* readPages(ractl);
  if (!err) return;
  ractl.index = index;
  if (ra.size > index - start) yield* doPageCacheRa(ractl, ra.size - (index - start), ra.asyncSize);
}

/** `__ffs(x)`: the index of the lowest set bit of `x` (> 0). */
function lowestSetBit(x: number): number {
  let n = 0;
  while (x % 2 === 0) {
    x /= 2;
    n++;
  }
  return n;
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
 * PG_readahead. Clears the marker (on the whole folio); if the folio is where the current window expected
 * it (`start + size - async_size`, rounded down to the folio's size), the next window follows the current
 * one and grows (`get_next_ra_size()`); otherwise the window is rebuilt from the cached run after the
 * folio. Either way the folio order grows by 2 (`ra->order += 2`), the window's end is aligned down to that
 * order (at most `ffs(max_pages) - 1`), and the whole new window is lookahead.
 */
export function* pageCacheAsyncRa(ractl: ReadaheadControl, folio: Page, reqCount: number): Kernel<void> {
  const ra = ractl.ra;
  if (ra.raPages === 0) return;
  if (folio.test('writeback')) return;
  folioClearReadahead(folio);
  const maxPages = ra.raPages;
  const index = ractl.index;
  const nr = folioNrPages(folio);
  const expectedRaw = ra.start + ra.size - ra.asyncSize;
  const expected = expectedRaw - (expectedRaw % nr);
  if (index === expected) {
    ra.start += ra.size;
    ra.size = Math.max(ra.size, getNextRaSize(ra, maxPages));
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
  }
  // readit:
  ra.order += 2;
  const align = 2 ** Math.min(ra.order, lowestSetBit(maxPages));
  const end = ra.start + ra.size;
  const alignedEnd = end - (end % align);
  if (alignedEnd > ra.start) ra.size -= end - alignedEnd;
  ra.asyncSize = ra.size;
  ractl.index = ra.start;
  yield* pageCacheRaOrder(ractl, ra);
}
