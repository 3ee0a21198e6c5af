import { SpinLock } from '@spf/locks';
import { type Kernel, kassert } from '@spf/machine';
import {
  _PAGE_PRESENT,
  _PAGE_PSE,
  entryTablePa,
  flushTlbMmRange,
  getPage,
  type Level,
  levelShift,
  type Mmu,
  OutOfMemoryError,
  type Page,
  PageTables,
  type PhysicalMemory,
  pageMapcountDec,
  pageMapcountInc,
  pteExec,
  pteMkclean,
  pteMkold,
  pteModify,
  pteMkwrite,
  pteNeedsFlush,
  pteNone,
  ptePfn,
  ptePresent,
  pteSpecial,
  pteUser,
  pteWrite,
  pteWrprotect,
  putPage,
  tableIndex,
} from '@spf/pagetable';
import type { SpinLockLike } from './mm-locks.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type MmStruct } from './mm-struct.js';
import type { MmPageTableOps, MmuGather, PresentPte } from './page-table-ops.js';
import { ShmemZeroFile, type VmArea } from './vm-area.js';
import { VM_SHARED, VM_WRITE } from './vm-flags.js';

/** How the page tables of an mm are built on @spf/pagetable. */
export type PagetableOpsOptions = {
  /** Physical memory shared by every mm of the system. */
  readonly mem: PhysicalMemory;
  /** The MMU whose per-CPU TLBs are shot down; without one, TLB flushes do nothing. */
  readonly mmu?: Mmu;
  /** PCID of the address space. */
  readonly pcid?: number;
};

/**
 * `pte_lockptr()` (include/linux/mm.h, split PTE locks): the spinlock of the page-table page that holds
 * `ptep`, kept in that page's `ptl` slot and created on first use. Fault handlers must take this lock
 * around PTE updates, as zap, mprotect and fork here do.
 */
export function pteLockptr(mem: PhysicalMemory, ptep: number): SpinLockLike {
  const page = mem.page(Math.floor(ptep / 4096));
  if (page.ptl === null) page.ptl = new SpinLock(`ptl:0x${page.pfn.toString(16)}`, { lockClass: 'ptlock' });
  return page.ptl as SpinLockLike;
}

/** The error of a page-table allocation for `addr` that found no free frame. */
function tableOom(what: string, addr: number): OutOfMemoryError {
  return new OutOfMemoryError(`out of simulated memory allocating a ${what} for 0x${addr.toString(16)}`, 0);
}

/** Which RSS counter a page mapped in `vma` is accounted in (mm_counter()). */
export function mmCounterOf(vma: VmArea, page: Page): number {
  if (page.test('anon')) return MM_ANONPAGES;
  if (vma.vmFile instanceof ShmemZeroFile || page.test('swapbacked')) return MM_SHMEMPAGES;
  return MM_FILEPAGES;
}

/**
 * A page "exclusive to this mapping" (PageAnonExclusive in Linux): anonymous, mapped once and referenced
 * once. Simplification: Linux keeps an explicit flag that fork clears and a write fault sets again.
 */
export function pageAnonExclusive(page: Page): boolean {
  return page.test('anon') && page.mapcount === 1 && page.refcount === 1;
}

/**
 * The page tables of one mm on @spf/pagetable (`PageTables`), with the kernel functions the VMA
 * layer runs on them: zap, change_protection, copy_page_range, move_page_tables, free_pgtables and
 * the TLB shootdown. Page-table pages are freed only after the TLB flush that follows their unlinking
 * (the mmu_gather order), so a CPU still walking them under a pending shootdown never sees freed memory.
 */
export class PagetableOps implements MmPageTableOps {
  readonly pt: PageTables;
  readonly mem: PhysicalMemory;
  readonly mmu: Mmu | null;
  private readonly opts: PagetableOpsOptions;

  constructor(
    readonly mm: MmStruct,
    opts: PagetableOpsOptions,
  ) {
    this.opts = opts;
    this.mem = opts.mem;
    this.mmu = opts.mmu ?? null;
    this.pt = new PageTables(opts.mem, { pcid: opts.pcid ?? 0 });
  }

  /** A {@link PageTableFactory} for {@link MmConfig.pageTables}. */
  static factory(opts: PagetableOpsOptions): (mm: MmStruct) => PagetableOps {
    return (mm) => new PagetableOps(mm, opts);
  }

  forkFactory(): (mm: MmStruct) => PagetableOps {
    return PagetableOps.factory({ mem: this.opts.mem, mmu: this.opts.mmu });
  }

  /** Whether `pfn` holds a normal page (not the zero page or a special mapping): vm_normal_page(). */
  private normalPage(pte: bigint): Page | null {
    if (pteSpecial(pte)) return null;
    const pfn = ptePfn(pte);
    if (pfn === this.mem.zeroPfn) return null;
    return this.mem.page(pfn);
  }

  /** Calls `fn` for every existing page table (level 1) overlapping [start, end), with its range. */
  private *forEachTable(
    start: number,
    end: number,
    fn: (tablePa: number, s: number, e: number) => Kernel<void>,
    tablePa = this.pt.pgd,
    level: Level = this.pt.levels,
  ): Kernel<void> {
    const span = 2 ** levelShift[level];
    let a = start;
    while (a < end) {
      const regionEnd = Math.min(end, (Math.floor(a / span) + 1) * span);
      const entryPa = tablePa + tableIndex(a, level) * 8;
      const e = yield* this.pt.readEntryK(entryPa, 'walk');
      if ((e & _PAGE_PRESENT) !== 0n && !(level <= 3 && (e & _PAGE_PSE) !== 0n)) {
        if (level === 2) yield* fn(entryTablePa(e), a, regionEnd);
        else yield* this.forEachTable(a, regionEnd, fn, entryTablePa(e), (level - 1) as Level);
      }
      a = regionEnd;
    }
  }

  *zapRange(tlb: MmuGather, vma: VmArea, start: number, end: number): Kernel<number> {
    let cleared = 0;
    const mm = this.mm;
    const self = this;
    yield* this.forEachTable(start, end, function* (tablePa, s, e) {
      const ptl = pteLockptr(self.mem, tablePa);
      yield* ptl.lock();
      for (let a = s; a < e; a += 4096) {
        const ptep = tablePa + tableIndex(a, 1) * 8;
        if (pteNone(self.mem.read64(ptep))) continue;
        const old = yield* self.pt.ptepGetAndClear(a, ptep);
        if (!ptePresent(old)) continue;
        cleared++;
        tlb.needFlush = true; // tlb_remove_tlb_entry()
        const page = self.normalPage(old);
        if (page === null) continue;
        yield* mm.addMmCounter(mmCounterOf(vma, page), -1);
        yield* pageMapcountDec(page);
        // The reference is dropped after the TLB flush (tlb_remove_page + tlb_finish_mmu).
        tlb.defer(() => putPage(page));
      }
      yield* ptl.unlock();
    });
    return cleared;
  }

  *changeProtection(tlb: MmuGather, vma: VmArea, start: number, end: number, newProt: bigint): Kernel<void> {
    const self = this;
    const privateWritable = (vma.vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    yield* this.forEachTable(start, end, function* (tablePa, s, e) {
      const ptl = pteLockptr(self.mem, tablePa);
      yield* ptl.lock();
      for (let a = s; a < e; a += 4096) {
        const ptep = tablePa + tableIndex(a, 1) * 8;
        const old = self.mem.read64(ptep);
        if (!ptePresent(old)) continue;
        let pte = pteModify(old, newProt);
        // MM_CP_TRY_CHANGE_WRITABLE: an exclusive anonymous page of a private writable VMA can be made
        // writable at once (can_change_private_pte_writable()); everything else keeps faulting for COW.
        const page = self.normalPage(old);
        if (privateWritable && !pteWrite(pte) && page !== null && pageAnonExclusive(page))
          pte = pteMkwrite(pte);
        if (pteNeedsFlush(old, pte)) tlb.needFlush = true; // tlb_flush_pte_range()
        yield* self.pt.setPteAt(a, ptep, pte);
      }
      yield* ptl.unlock();
    });
  }

  /**
   * Allocates the tables down to the PTE for `addr` (pte_alloc_map and the upper-level allocs). Throws
   * @spf/pagetable's OutOfMemoryError when a table cannot be allocated (Linux returns -ENOMEM up the
   * chain; fork turns it into ENOMEM, see dupMmap).
   */
  private *pteAllocMap(addr: number): Kernel<number> {
    const pgdp = this.pt.pgdOffset(addr);
    const p4dp = yield* this.pt.p4dAlloc(pgdp, addr);
    if (p4dp === null) throw tableOom('p4d table', addr);
    const pudp = yield* this.pt.pudAlloc(p4dp, addr);
    if (pudp === null) throw tableOom('pud table', addr);
    const pmdp = yield* this.pt.pmdAlloc(pudp, addr);
    if (pmdp === null) throw tableOom('pmd table', addr);
    const ptep = yield* this.pt.pteAllocMap(pmdp, addr);
    if (ptep === null) throw tableOom('page table', addr);
    return ptep;
  }

  *copyPageRange(dst: VmArea, src: VmArea): Kernel<void> {
    const srcOps = src.vmMm.pageTables as PagetableOps;
    kassert(srcOps instanceof PagetableOps, 'copy_page_range needs both mms on @spf/pagetable');
    const self = this;
    const dstMm = this.mm;
    const cow = src.isCowMapping();
    const shared = (src.vmFlags & VM_SHARED) !== 0;
    yield* srcOps.forEachTable(src.vmStart, src.vmEnd, function* (tablePa, s, e) {
      for (let a = s; a < e; a += 4096) {
        const sptep = tablePa + tableIndex(a, 1) * 8;
        let pte = srcOps.mem.read64(sptep);
        if (!ptePresent(pte)) continue;
        const dptep = yield* self.pteAllocMap(a);
        const sptl = pteLockptr(srcOps.mem, sptep);
        yield* sptl.lock();
        pte = yield* srcOps.pt.ptepGet(sptep);
        const page = srcOps.normalPage(pte);
        if (cow && pteWrite(pte)) {
          yield* srcOps.pt.ptepSetWrprotect(a, sptep);
          pte = pteWrprotect(pte);
        }
        if (shared) pte = pteMkclean(pte);
        pte = pteMkold(pte);
        if (page !== null) {
          yield* getPage(page);
          yield* pageMapcountInc(page);
          yield* dstMm.addMmCounter(mmCounterOf(dst, page), 1);
        }
        yield* sptl.unlock();
        const dptl = pteLockptr(self.mem, dptep);
        yield* dptl.lock();
        yield* self.pt.setPteAt(a, dptep, pte);
        yield* dptl.unlock();
      }
    });
  }

  *movePageTables(
    tlb: MmuGather,
    _vma: VmArea,
    oldAddr: number,
    _newVma: VmArea,
    newAddr: number,
    len: number,
  ): Kernel<number> {
    // page->index of anonymous pages stays valid: copy_vma() keeps vm_pgoff for faulted VMAs.
    const self = this;
    const moves: { from: number; to: number }[] = [];
    yield* this.forEachTable(oldAddr, oldAddr + len, function* (tablePa, s, e) {
      for (let a = s; a < e; a += 4096) {
        if (ptePresent(self.mem.read64(tablePa + tableIndex(a, 1) * 8)))
          moves.push({ from: a, to: newAddr + (a - oldAddr) });
      }
    });
    for (const m of moves) {
      let dptep: number;
      try {
        dptep = yield* this.pteAllocMap(m.to);
      } catch (e) {
        // alloc_new_pmd() / pte_alloc() failed: stop here and report how far the move got.
        if (e instanceof OutOfMemoryError) return m.from - oldAddr;
        throw e;
      }
      const ptep = (yield* this.lookupPtep(m.from)) as number;
      const ptl = pteLockptr(this.mem, ptep);
      yield* ptl.lock();
      const pte = yield* this.pt.ptepGetAndClear(m.from, ptep);
      if (ptePresent(pte)) tlb.needFlush = true; // move_ptes(): force_flush
      yield* ptl.unlock();
      const dptl = pteLockptr(this.mem, dptep);
      yield* dptl.lock();
      yield* this.pt.setPteAt(m.to, dptep, pte);
      yield* dptl.unlock();
    }
    return len;
  }

  private *lookupPtep(addr: number): Kernel<number | null> {
    const pgdp = this.pt.pgdOffset(addr);
    const p4dp = yield* this.pt.p4dOffset(pgdp, addr);
    if (((yield* this.pt.readEntryK(p4dp)) & _PAGE_PRESENT) === 0n) return null;
    const pudp = yield* this.pt.pudOffset(p4dp, addr);
    if (((yield* this.pt.readEntryK(pudp)) & _PAGE_PRESENT) === 0n) return null;
    const pmdp = yield* this.pt.pmdOffset(pudp, addr);
    return yield* this.pt.pteOffsetMap(pmdp, addr);
  }

  /**
   * Models `free_pgtables()`/`free_pgd_range()` in mm/memory.c: unlinks every page table (and then every
   * page directory and PDPT) that only served [start, end) — its whole span lies inside [floor, ceiling)
   * (0 as ceiling means the top of the address space). The frames are freed after the next TLB flush.
   */
  *freePgtables(tlb: MmuGather, floor: number, start: number, end: number, ceiling: number): Kernel<void> {
    const ceil = ceiling === 0 ? 2 ** 48 : ceiling;
    yield* this.freeRange(tlb, this.pt.pgd, this.pt.levels, floor, start, end, ceil);
  }

  /**
   * Walks the existing entries of the table at `level` overlapping [start, end), depth first, and unlinks
   * each child table whose span lies inside [floor, ceiling) once it is empty (free_p*d_range()).
   */
  private *freeRange(
    tlb: MmuGather,
    tablePa: number,
    level: Level,
    floor: number,
    start: number,
    end: number,
    ceiling: number,
  ): Kernel<void> {
    const span = 2 ** levelShift[level];
    let a = Math.floor(start / span) * span;
    for (; a < end; a += span) {
      const entryPa = tablePa + tableIndex(a, level) * 8;
      const e = yield* this.pt.readEntryK(entryPa, 'free_pgd_range');
      if ((e & _PAGE_PRESENT) === 0n || (level <= 3 && (e & _PAGE_PSE) !== 0n)) continue;
      const child = entryTablePa(e);
      if (level > 2) {
        yield* this.freeRange(
          tlb,
          child,
          (level - 1) as Level,
          floor,
          Math.max(start, a),
          Math.min(end, a + span),
          ceiling,
        );
      }
      if (a < floor || a + span > ceiling) continue;
      let empty = true;
      for (let i = 0; i < 512 && empty; i++) empty = pteNone(this.mem.read64(child + i * 8));
      if (!empty) {
        kassert(level > 2, () => `free_pgtables: page table at 0x${child.toString(16)} still maps pages`);
        continue;
      }
      yield* this.pt.writeEntryK(entryPa, 0n, 'pmd_clear');
      const childLevel = (level - 1) as Level;
      tlb.needFlush = true; // pte_free_tlb() and friends set freed_tables
      tlb.defer(() => this.pt.freeTablePage(child / 4096, childLevel));
    }
  }

  *tlbFinishMmu(tlb: MmuGather, start: number, end: number): Kernel<void> {
    if (tlb.needFlush && this.mmu) yield* flushTlbMmRange(this.mmu, this.pt, start, end);
    tlb.needFlush = false;
    // Pages and page-table pages unlinked before this flush can be freed now.
    yield* tlb.release();
  }

  *flushTlbMm(): Kernel<void> {
    if (this.mmu) yield* flushTlbMmRange(this.mmu, this.pt, 0, this.mm.taskSize);
  }

  *flushTlbPage(addr: number): Kernel<void> {
    if (this.mmu) yield* flushTlbMmRange(this.mmu, this.pt, addr, addr + 4096);
  }

  *presentPtes(start: number, end: number): Generator<PresentPte> {
    const mm = this.mm;
    const mem = this.mem;
    const self = this;
    function* walk(tablePa: number, level: Level, s: number, e: number): Generator<PresentPte> {
      const span = 2 ** levelShift[level];
      let a = s;
      while (a < e) {
        const regionEnd = Math.min(e, (Math.floor(a / span) + 1) * span);
        const entry = mem.read64(tablePa + tableIndex(a, level) * 8);
        if (level === 1) {
          if (ptePresent(entry)) {
            const page = self.normalPage(entry);
            const vma = mm.vmaLookup(a);
            yield {
              addr: a,
              pte: entry,
              writable: pteWrite(entry),
              user: pteUser(entry) && (entry & _PAGE_PRESENT) !== 0n,
              executable: pteExec(entry) && (entry & _PAGE_PRESENT) !== 0n,
              page,
              rssType: page === null || vma === null ? -1 : mmCounterOf(vma, page),
            };
          }
        } else if ((entry & _PAGE_PRESENT) !== 0n && (entry & _PAGE_PSE) === 0n) {
          yield* walk(entryTablePa(entry), (level - 1) as Level, a, regionEnd);
        }
        a = regionEnd;
      }
    }
    yield* walk(this.pt.pgd, this.pt.levels, start, Math.min(end, 2 ** 47));
  }

  /** Frees every page-table page (exit_mmap's final free_pgtables + pgd_free). Pages must be zapped. */
  destroy(): void {
    this.pt.destroy(`exit_mmap of ${this.mm.name}`);
  }
}
