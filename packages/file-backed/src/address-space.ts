import { type Page, putPage } from '@spf/pagetable';
import { type Kernel, rmwEffect } from '@spf/machine';
import { createSpinLock, type SpinLockLike, type VmArea } from '@spf/vma';
import type { Inode } from './inode.js';
import { PageCacheTree, XaState } from './page-cache-tree.js';

/**
 * Whether a page found by a lockless page-cache lookup is still the allocation it was (its frame was not
 * freed since). In Linux `struct page` memory is never freed, so a lookup racing the removal and freeing of
 * a page reads a refcount of 0 (or a reused page, which the re-check after `folio_try_get()` rejects); the
 * simulator poisons freed frames instead, so a lockless reader asks this before looking at the page.
 */
export function pageStillAllocated(page: Page): boolean {
  return page.mem.isLive(page.pfn, page.gen);
}

/**
 * Models `folio_try_get()` (include/linux/page_ref.h) on a page found without a reference: takes one unless
 * the count is zero, which is also what a freed page reads as (see {@link pageStillAllocated}).
 */
export function* folioTryGet(page: Page): Kernel<boolean> {
  yield rmwEffect(page.line, 'folio_try_get');
  return folioTryGetRef(page);
}

/** What {@link folioTryGet} does once its atomic on the page's line is performed. */
function folioTryGetRef(page: Page): boolean {
  if (!pageStillAllocated(page)) return false;
  const head = page.head;
  if (head.refcount === 0) return false;
  head.refcount = head.refcount + 1;
  return true;
}

/**
 * `struct address_space` (include/linux/fs.h): the page cache of one inode (`i_pages`, an RCU-safe radix
 * tree, written under `xa_lock`) and the VMAs that map it (`i_mmap`, which `unmap_mapping_range()` and
 * `folio_mkclean()` walk).
 *
 * `i_mmap` is kept by the file's `vm_ops->open` (called by @spf/vma for every VMA made from a file VMA:
 * mmap, split, fork, mremap); VMAs that @spf/vma has since detached (munmap, merge) are dropped from it when
 * it is next walked. Linux's interval tree is a set here: the walks test each VMA's range.
 */
export class AddressSpace {
  readonly iPages: PageCacheTree;
  /** `i_pages.xa_lock`: serialises insertions and deletions. */
  readonly xaLock: SpinLockLike;
  /** `i_mmap`: every VMA mapping this file. */
  readonly iMmap = new Set<VmArea>();

  constructor(readonly host: Inode) {
    this.iPages = new PageCacheTree(`inode#${host.ino}`, host.sb.rcu);
    this.xaLock = createSpinLock(`inode#${host.ino}.i_pages.xa_lock`, 'mapping.i_pages.xa_lock');
  }

  /** Pages in the cache (`nrpages`). */
  get nrpages(): number {
    return this.iPages.count;
  }

  /** The VMAs of `i_mmap` still attached to an mm (drops the detached ones). */
  mappers(): VmArea[] {
    const out: VmArea[] = [];
    for (const v of this.iMmap) {
      if (v.detached || v.poisoned !== null) this.iMmap.delete(v);
      else out.push(v);
    }
    return out;
  }

  /**
   * Models `filemap_get_entry()` + `folio_try_get()` + the re-check of `__filemap_get_folio()` without
   * FGP flags: the page at `index` with a reference taken, or null. Lockless under RCU, as in Linux.
   *
   * The lookup is an {@link XaState} cursor: `xas_load()` walks from `xa_head` to the bottom node, and once
   * `folio_try_get()` has taken a reference, `xas_reload()` re-reads the one slot of that node (a cached
   * page costs the head, one load per level and one more of the bottom node). Only a failed get or a
   * failed re-check goes back to `repeat:`, which walks from the head again.
   */
  *getFolio(index: number): Kernel<Page | null> {
    const rcu = this.host.sb.rcu;
    yield* rcu.readLock();
    const xas = new XaState(this.iPages, index);
    let page: Page | null;
    for (;;) {
      // repeat: xas_reset(); xas_load()
      page = yield* xas.load();
      if (page === null) break;
      // folio_try_get(page)
      yield rmwEffect(page.line, 'folio_try_get');
      if (!folioTryGetRef(page)) continue;
      // The page may have been removed (and even reused) between the load and the get: re-check its slot.
      if ((yield* xas.reload()) === page && page.mapping === this) break;
      yield* putPage(page);
    }
    yield* rcu.readUnlock();
    return page;
  }

  /**
   * Models `filemap_add_folio()`: inserts a new, locked page at `index` under xa_lock; the cache takes its
   * own reference (the caller keeps its one). Returns false (EEXIST) if a page is already there.
   */
  *addFolio(page: Page, index: number): Kernel<boolean> {
    yield* this.xaLock.lock();
    if (this.iPages.peek(index) !== null) {
      yield* this.xaLock.unlock();
      return false;
    }
    page.mapping = this;
    page.index = index;
    page.refcount = page.refcount + 1;
    yield* this.iPages.store(index, page);
    yield* this.xaLock.unlock();
    return true;
  }

  /**
   * Models `filemap_remove_folio()` + `filemap_free_folio()`: removes a locked page from the cache and
   * drops the cache's reference. `page->mapping` is cleared, which is what a fault holding the page
   * re-checks to detect truncation.
   */
  *removeFolio(page: Page): Kernel<void> {
    yield* this.xaLock.lock();
    const found = yield* this.iPages.erase(page.index);
    if (found !== page)
      throw new Error(`page cache index ${page.index} does not hold frame 0x${page.pfn.toString(16)}`);
    page.mapping = null;
    yield* this.xaLock.unlock();
    yield* putPage(page);
  }
}
