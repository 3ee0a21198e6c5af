import type { Kernel } from '@spf/machine';
import type { Page, PageTables } from '@spf/pagetable';
import type { MmStruct } from './mm-struct.js';
import type { VmArea } from './vm-area.js';

/** A present user PTE as the mm invariant checker and smaps see it. */
export type PresentPte = {
  readonly addr: number;
  /** The raw entry. */
  readonly pte: bigint;
  readonly writable: boolean;
  readonly user: boolean;
  readonly executable: boolean;
  /** The mapped page (`vm_normal_page()`), or null for the zero page, special/PFN mappings, or outside every VMA. */
  readonly page: Page | null;
  /** RSS counter the page is accounted in (MM_FILEPAGES, MM_ANONPAGES or MM_SHMEMPAGES), -1 for none. */
  readonly rssType: number;
};

/**
 * One operation's `struct mmu_gather` (include/asm-generic/tlb.h): whether it removed or changed a
 * translation some TLB may hold (the `cleared_ptes`/`freed_tables` bits), and the pages and page tables it
 * released, which may be freed only after the TLB flush. Linux keeps it on the stack of each munmap,
 * mprotect, mremap or madvise, so operations running at the same time under the mmap lock held for reading
 * (madvise, faults) never flush or free each other's work; make one per operation with `new MmuGather()`
 * and end it with {@link MmPageTableOps.tlbFinishMmu}.
 */
export class MmuGather {
  /** A translation some TLB may hold was removed or changed: the flush must happen. */
  needFlush = false;
  private readonly deferred: Array<() => Kernel<unknown>> = [];

  /** Frees something (`put_page`, a page-table page) once the flush is done (`tlb_remove_page()`). */
  defer(free: () => Kernel<unknown>): void {
    this.deferred.push(free);
  }

  /** Runs the deferred frees in order, once (`tlb_batch_pages_flush()`, `tlb_table_flush()`). */
  *release(): Kernel<void> {
    const work = this.deferred.splice(0);
    for (const free of work) yield* free();
  }
}

/**
 * Everything @spf/vma needs from the page tables of an mm: the kernel functions that walk and change them
 * on behalf of the VMA layer. All calls from this package into page-table code go through this interface,
 * implemented over @spf/pagetable (or by {@link NoPageTables} for an mm that is never faulted in).
 */
export interface MmPageTableOps {
  /** The page tables themselves (`mm->pgd`), or null for {@link NoPageTables}, a test double. */
  readonly pgd: PageTables | null;
  /**
   * Models `unmap_page_range()`/`zap_pte_range()` in mm/memory.c: clears every PTE in [start, end) of
   * `vma`, drops the pages' mapcounts and references and the mm's RSS counters. Returns the number of
   * PTEs cleared. The pages are released into `tlb` and freed by {@link MmPageTableOps.tlbFinishMmu}.
   */
  zapRange(tlb: MmuGather, vma: VmArea, start: number, end: number): Kernel<number>;
  /**
   * Models `change_protection()` in mm/mprotect.c: rewrites the protection of present PTEs in [start,
   * end) to `newProt`, keeping them write-protected where a write fault must still happen (COW, dirty
   * tracking). PTEs whose change a TLB must see (`pte_needs_flush()`) are recorded in `tlb`.
   */
  changeProtection(tlb: MmuGather, vma: VmArea, start: number, end: number, newProt: bigint): Kernel<void>;
  /**
   * Models `copy_page_range()` in mm/memory.c for fork: copies `src`'s PTEs into `dst` (another mm),
   * write-protecting both for COW mappings and taking page references and mapcounts.
   */
  copyPageRange(dst: VmArea, src: VmArea): Kernel<void>;
  /**
   * Models `move_page_tables()` in mm/mremap.c: moves `len` bytes of PTEs from `oldAddr` to `newAddr`; a
   * present PTE moved is recorded in `tlb` (`move_ptes()`'s force_flush). Returns how many bytes from
   * `oldAddr` were moved: `len`, or less when a page table at the destination could not be allocated
   * (everything before that point has moved, nothing after it).
   */
  movePageTables(
    tlb: MmuGather,
    vma: VmArea,
    oldAddr: number,
    newVma: VmArea,
    newAddr: number,
    len: number,
  ): Kernel<number>;
  /**
   * Models `free_pgtables()` in mm/memory.c: frees page-table pages that only covered [start, end), never
   * touching tables still needed by addresses in [floor, start) or [end, ceiling). The tables are unlinked
   * now and freed by {@link MmPageTableOps.tlbFinishMmu} (`pte_free_tlb()`).
   */
  freePgtables(tlb: MmuGather, floor: number, start: number, end: number, ceiling: number): Kernel<void>;
  /**
   * Models `tlb_finish_mmu()` (mm/mmu_gather.c): if the calls that filled `tlb` removed or changed a
   * translation a TLB may hold (a present PTE zapped, moved or rewritten as `pte_needs_flush()` says, or a
   * page table unlinked), `flush_tlb_mm_range()` in arch/x86/mm/tlb.c flushes [start, end) locally and
   * shoots it down on the other CPUs of mm_cpumask; with nothing gathered it sends no IPIs
   * (`tlb_flush_mmu_tlbonly()` returns early). Then the pages and page tables `tlb` holds are freed.
   */
  tlbFinishMmu(tlb: MmuGather, start: number, end: number): Kernel<void>;
  /**
   * Models `flush_tlb_mm()`: flushes the whole address space on every CPU of mm_cpumask, unconditionally
   * (dup_mmap() does this after write-protecting the parent's PTEs for copy-on-write). Frees nothing.
   */
  flushTlbMm(): Kernel<void>;
  /**
   * Models `flush_tlb_page()` as `ptep_clear_flush()` in mm/pgtable-generic.c calls it after clearing a
   * present PTE: flushes the one page here and on every other CPU of mm_cpumask. Frees nothing.
   */
  flushTlbPage(addr: number): Kernel<void>;
  /**
   * The end of `exit_mmap()`: frees every page-table page, the top level included (`free_pgtables()` of what
   * is left and `pgd_free()`), after every CPU has dropped the address space. The pages must be zapped.
   */
  destroy(): void;
  /** Every present user PTE in [start, end), in address order (no machine effects). */
  presentPtes(start: number, end: number): Iterable<PresentPte>;
  /** How a child created by fork builds its page tables (the same memory and MMU); absent: none. */
  forkFactory?(): PageTableFactory;
}

/**
 * A test double: the page tables of an mm that never maps anything, for tests of the VMA layer alone. A
 * booted system always uses real page tables (`PagetableOps`); asking such an mm for `mm.pgd` throws.
 */
export class NoPageTables implements MmPageTableOps {
  readonly pgd = null;
  destroy(): void {}
  *zapRange(): Kernel<number> {
    return 0;
  }
  *changeProtection(): Kernel<void> {}
  *copyPageRange(): Kernel<void> {}
  *movePageTables(
    _tlb: MmuGather,
    _vma: VmArea,
    _oldAddr: number,
    _newVma: VmArea,
    _newAddr: number,
    len: number,
  ): Kernel<number> {
    return len;
  }
  *freePgtables(): Kernel<void> {}
  *tlbFinishMmu(tlb: MmuGather): Kernel<void> {
    yield* tlb.release();
  }
  *flushTlbMm(): Kernel<void> {}
  *flushTlbPage(): Kernel<void> {}
  presentPtes(): Iterable<PresentPte> {
    return [];
  }
}

/** Builds the page-table operations for a new mm. */
export type PageTableFactory = (mm: MmStruct) => MmPageTableOps;
