import { PAGE_SIZE } from './entry-bits.js';
import { MemoryLine, UseAfterFreeError } from '@spf/machine';
import type { PhysicalMemory } from './physical-memory.js';

/** `struct page` flag bits (after include/linux/page-flags.h; only the ones the simulator uses). */
export const PG = {
  locked: 1 << 0,
  referenced: 1 << 1,
  uptodate: 1 << 2,
  dirty: 1 << 3,
  lru: 1 << 4,
  active: 1 << 5,
  reserved: 1 << 6,
  swapbacked: 1 << 7,
  anon: 1 << 8,
  head: 1 << 9,
  table: 1 << 10,
  writeback: 1 << 11,
  zero: 1 << 12,
  /** PG_readahead (PG_reclaim's bit in Linux): reaching this page should start the next async readahead. */
  readahead: 1 << 13,
} as const;
/** A `struct page` flag name. */
export type PageFlagName = keyof typeof PG;

/**
 * `struct page` (include/linux/mm_types.h) for one frame. Counters and flags live in typed arrays owned by
 * {@link PhysicalMemory} (so a million frames cost a few bytes each); a `Page` object is created only when
 * someone asks for one with {@link PhysicalMemory.page}, and carries the fields that hold objects
 * (`mapping`, `index`, `private`, `ptl`).
 *
 * A `Page` remembers the allocation generation it was created for. Using it after its frame was freed, or
 * after the frame was freed and allocated again, throws `UseAfterFreeError` naming who freed it: a
 * stale `struct page *` is caught even when the frame has been reused.
 *
 * `refcount` is `page_ref_count()` and `mapcount` is `page_mapcount()` (Linux stores `_mapcount` minus one;
 * here 0 means unmapped). Plain property access is the synchronous form; the kernel forms that make each
 * update a machine effect on {@link Page.line} are in page-ref.ts (`getPage`, `putPage`, ...).
 */
export class Page {
  /** `page->mapping`: the address_space or anon_vma (owned by the kernel packages). */
  mapping: unknown = null;
  /** `page->index`: offset within the mapping, in pages. */
  index = 0;
  /** `page->private`. */
  private: unknown = null;
  /**
   * For page-table pages: the split page-table lock (`ptdesc->ptl`). @spf/pagetable never reads it; the
   * kernel packages store their spinlock here.
   */
  ptl: unknown = null;
  private lineCache: MemoryLine | null = null;

  constructor(
    /** The physical memory this frame belongs to. */
    readonly mem: PhysicalMemory,
    /** Page frame number. */
    readonly pfn: number,
    /** Allocation generation of the frame when this object was made. */
    readonly gen: number,
  ) {}

  /** The 64-byte line holding this `struct page` (refcount, mapcount and flags are fields of one line). */
  get line(): MemoryLine {
    if (this.lineCache === null) this.lineCache = MemoryLine.numbered('page:0x', this.pfn);
    return this.lineCache;
  }
  /** Physical address of the frame. */
  get pa(): number {
    return this.pfn * PAGE_SIZE;
  }
  /** Throws `UseAfterFreeError` if this page has been freed since the object was made. */
  check(): void {
    if (!this.mem.isLive(this.pfn, this.gen)) {
      throw new UseAfterFreeError(
        `struct page of frame 0x${this.pfn.toString(16)} used after it was freed by ${this.mem.freedBy(this.pfn)}: a stale page pointer`,
      );
    }
  }
  /** `page_ref_count()`. */
  get refcount(): number {
    this.check();
    return this.mem.refcounts[this.pfn];
  }
  set refcount(v: number) {
    this.check();
    this.mem.refcounts[this.pfn] = v;
  }
  /** `page_mapcount()`: how many page-table entries map this page. */
  get mapcount(): number {
    this.check();
    return this.mem.mapcounts[this.pfn];
  }
  set mapcount(v: number) {
    this.check();
    this.mem.mapcounts[this.pfn] = v;
  }
  /** All flag bits (see {@link PG}). */
  get flags(): number {
    this.check();
    return this.mem.flagWords[this.pfn];
  }
  /** `PageXxx(page)`. */
  test(flag: PageFlagName): boolean {
    return (this.flags & PG[flag]) !== 0;
  }
  /** `SetPageXxx(page)`. */
  set(flag: PageFlagName): void {
    this.check();
    this.mem.flagWords[this.pfn] |= PG[flag];
  }
  /** `ClearPageXxx(page)`. */
  clear(flag: PageFlagName): void {
    this.check();
    this.mem.flagWords[this.pfn] &= ~PG[flag];
  }
  /** Names of the set flags. */
  flagNames(): PageFlagName[] {
    const f = this.flags;
    return (Object.keys(PG) as PageFlagName[]).filter((k) => (f & PG[k]) !== 0);
  }
  /** `compound_head()` / `page_folio()`: the first page of the block this page belongs to (itself if a head). */
  get head(): Page {
    this.check();
    return this.mem.isTail(this.pfn) ? this.mem.page(this.mem.compoundHead(this.pfn)) : this;
  }
  /** The order of the block this page heads (`compound_order()`), 0 for a single page. */
  get order(): number {
    this.check();
    return this.mem.blockOrder(this.pfn);
  }
}
