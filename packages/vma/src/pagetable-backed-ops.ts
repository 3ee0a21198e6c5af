import { type Kernel, kassert } from '@spf/machine';
import { SINGLE_DEPTH_NESTING } from '@spf/locks';
import {
  _PAGE_PRESENT,
  _PAGE_PSE,
  entryTablePa,
  flushTlbMmRange,
  getPage,
  type Level,
  levelShift,
  type Mmu,
  PAGE_SIZE,
  PageTables,
  type PhysicalMemory,
  pageMapcountInc,
  pmdNone,
  pteExec,
  pteMkclean,
  pteMkold,
  pteModify,
  pteMkwrite,
  pteNeedsFlush,
  pteNone,
  ptePresent,
  pteUser,
  pteWrite,
  pteWrprotect,
  putPage,
  tableIndex,
} from '@spf/pagetable';
import { pageAnonExclusive } from './memory/anon-exclusive.js';
import { type MemoryEnv, makeMemoryEnv } from './memory/memory-env.js';
import { addMmRssVec, mmCounter } from './memory/mm-counter.js';
import { pmdAllocWalk, pteAlloc, pteAllocMap } from './memory/page-table-alloc.js';
import { pteLockptr, pteOffsetMapLock, ptlockPtr } from './memory/pte-lock.js';
import { folioRemoveRmap } from './memory/rmap.js';
import { vmNormalPage } from './memory/vm-normal-page.js';
import { NR_MM_COUNTERS, type MmStruct } from './mm-struct.js';
import type { MmPageTableOps, MmuGather, PresentPte } from './page-table-ops.js';
import type { VmArea } from './vm-area.js';
import { VM_SHARED, VM_WRITE } from './vm-flags.js';

/**
 * How the page tables of an mm are built on @spf/pagetable: the system's {@link MemoryEnv} (a booted
 * system passes the one its fault handler uses, so faults and syscalls share costs and counters), or just
 * the physical memory for a test (then a default environment), plus the MMU and the PCID.
 */
export type PagetableOpsOptions = ({ readonly env: MemoryEnv } | { readonly mem: PhysicalMemory }) & {
  /** The MMU whose per-CPU TLBs are shot down; without one, TLB flushes do nothing. */
  readonly mmu?: Mmu;
  /** PCID of the address space. */
  readonly pcid?: number;
};

/**
 * Calls `fn` for every PMD entry of `pt` that links a PTE table overlapping [start, end), with the sub-range
 * that table covers (the `*_pmd_range()` loops of mm/memory.c). Entries are read with effects.
 */
function* forEachPmd(
  pt: PageTables,
  start: number,
  end: number,
  fn: (pmdp: number, s: number, e: number) => Kernel<void>,
  tablePa = pt.pgd,
  level: Level = pt.levels,
): Kernel<void> {
  const span = 2 ** levelShift[level];
  let a = start;
  while (a < end) {
    const regionEnd = Math.min(end, (Math.floor(a / span) + 1) * span);
    const entryPa = tablePa + tableIndex(a, level) * 8;
    const e = yield* pt.readEntryK(entryPa, 'walk');
    if ((e & _PAGE_PRESENT) !== 0n && !(level <= 3 && (e & _PAGE_PSE) !== 0n)) {
      if (level === 2) yield* fn(entryPa, a, regionEnd);
      else yield* forEachPmd(pt, a, regionEnd, fn, entryTablePa(e), (level - 1) as Level);
    }
    a = regionEnd;
  }
}

/**
 * The page tables of one mm on @spf/pagetable (`mm->pgd`, a `PageTables`), with the kernel functions the
 * VMA layer runs on them: zap, change_protection, copy_page_range, move_page_tables, free_pgtables and the
 * TLB shootdown. Every PTE is read and written through @spf/pagetable's kernel API under the split PTE lock
 * (`pte_offset_map_lock()`), and every page table is allocated with Linux's locks (`__pte_alloc()` and
 * friends in ./memory), exactly as the fault path does. Page-table pages are freed only after the TLB flush
 * that follows their unlinking (the mmu_gather order), so a CPU still walking them under a pending
 * shootdown never sees freed memory.
 */
export class PagetableOps implements MmPageTableOps {
  readonly pgd: PageTables;
  readonly env: MemoryEnv;
  readonly mmu: Mmu | null;

  constructor(
    readonly mm: MmStruct,
    private readonly opts: PagetableOpsOptions,
  ) {
    this.env = 'env' in opts ? opts.env : makeMemoryEnv({ mem: opts.mem });
    this.mmu = opts.mmu ?? null;
    this.pgd = new PageTables(this.env.mem, { pcid: opts.pcid ?? 0 });
  }

  /** A {@link PageTableFactory} for {@link MmConfig.pageTables}. */
  static factory(opts: PagetableOpsOptions): (mm: MmStruct) => PagetableOps {
    return (mm) => new PagetableOps(mm, opts);
  }

  forkFactory(): (mm: MmStruct) => PagetableOps {
    return PagetableOps.factory({ env: this.env, mmu: this.opts.mmu });
  }

  private get mem(): PhysicalMemory {
    return this.env.mem;
  }

  /**
   * Models `zap_pte_range()` and `unmap_page_range()` in mm/memory.c: under the PTE lock, each PTE is
   * cleared with `ptep_get_and_clear()` (so a hardware Dirty/Accessed update cannot be lost), its page's
   * mapcount dropped, and its reference handed to `tlb`; the RSS counters are updated once per table
   * (`add_mm_rss_vec()`).
   */
  *zapRange(tlb: MmuGather, vma: VmArea, start: number, end: number): Kernel<number> {
    let cleared = 0;
    const { mm, pgd: pt, env } = this;
    yield* forEachPmd(pt, start, end, function* (pmdp, s, e) {
      const locked = yield* pteOffsetMapLock(pt, pmdp, s);
      if (locked === null) return;
      const rss = new Array<number>(NR_MM_COUNTERS).fill(0);
      for (let a = s, ptep = locked.ptep; a < e; a += PAGE_SIZE, ptep += 8) {
        if (pteNone(yield* pt.ptepGet(ptep))) continue;
        const old = yield* pt.ptepGetAndClear(a, ptep);
        if (!ptePresent(old)) continue;
        cleared++;
        tlb.needFlush = true; // tlb_remove_tlb_entry()
        const page = vmNormalPage(env, vma, a, old);
        if (page === null) continue;
        rss[mmCounter(page)]--;
        yield* folioRemoveRmap(page);
        // The reference is dropped after the TLB flush (tlb_remove_page + tlb_finish_mmu).
        tlb.defer(() => putPage(page));
      }
      yield* addMmRssVec(mm, rss);
      yield* locked.ptl.unlock();
    });
    return cleared;
  }

  /**
   * Models `change_pte_range()` in mm/mprotect.c: under the PTE lock, each present PTE is taken with
   * `ptep_modify_prot_start()` (cleared atomically, so no CPU's MMU can set Accessed or Dirty in it while it
   * is rewritten), given the new protection (`pte_modify()`), made writable at once where
   * `can_change_pte_writable()` allows (an exclusive anonymous page of a private writable VMA), and put back
   * with `ptep_modify_prot_commit()`. PTEs whose change a TLB must see (`pte_needs_flush()`) are recorded
   * in `tlb`.
   */
  *changeProtection(tlb: MmuGather, vma: VmArea, start: number, end: number, newProt: bigint): Kernel<void> {
    const { pgd: pt, env } = this;
    const privateWritable = (vma.vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    yield* forEachPmd(pt, start, end, function* (pmdp, s, e) {
      const locked = yield* pteOffsetMapLock(pt, pmdp, s);
      if (locked === null) return;
      for (let a = s, ptep = locked.ptep; a < e; a += PAGE_SIZE, ptep += 8) {
        if (!ptePresent(yield* pt.ptepGet(ptep))) continue;
        const old = yield* pt.ptepModifyProtStart(a, ptep);
        let pte = pteModify(old, newProt);
        // MM_CP_TRY_CHANGE_WRITABLE: an exclusive anonymous page of a private writable VMA can be made
        // writable at once (can_change_private_pte_writable()); everything else keeps faulting for COW.
        if (privateWritable && !pteWrite(pte)) {
          const page = vmNormalPage(env, vma, a, old);
          if (page !== null && pageAnonExclusive(page)) pte = pteMkwrite(pte);
        }
        yield* pt.ptepModifyProtCommit(a, ptep, old, pte);
        if (pteNeedsFlush(old, pte)) tlb.needFlush = true; // tlb_flush_pte_range()
      }
      yield* locked.ptl.unlock();
    });
  }

  /**
   * Models `copy_pte_range()` / `copy_present_pte()` in mm/memory.c for fork: for each PTE table of `src`,
   * the child's table is allocated with Linux's locks (`pte_alloc_map_lock()`), its lock taken, then the
   * parent's (`spin_lock_nested()`); each present PTE is copied, write-protected in both mms for COW
   * mappings (`ptep_set_wrprotect()` on the parent's), cleaned for shared ones and made old, and its page
   * gains a reference and a mapcount; the child's RSS counters are updated once per table. Throws
   * OutOfMemoryError when a child table cannot be allocated (dup_mmap turns it into ENOMEM).
   */
  *copyPageRange(_dst: VmArea, src: VmArea): Kernel<void> {
    const spt = src.vmMm.pgd;
    const { pgd: dpt, env, mm: dstMm } = this;
    const cow = src.isCowMapping();
    const shared = (src.vmFlags & VM_SHARED) !== 0;
    kassert(spt !== dpt, 'copy_page_range: source and destination are the same mm');
    yield* forEachPmd(spt, src.vmStart, src.vmEnd, function* (spmdp, s, e) {
      // copy_pmd_range() skips what has nothing to copy; so does this (no child table for an empty one).
      const first = (yield* spt.pteOffsetMap(spmdp, s)) as number;
      let any = false;
      for (let p = first; p < first + ((e - s) / PAGE_SIZE) * 8 && !any; p += 8)
        any = ptePresent(yield* spt.ptepGet(p));
      if (!any) return;
      // pte_alloc_map_lock(): the child's table (throws OutOfMemoryError) and its lock; the child mm is not
      // visible to anyone else yet, so its PMD cannot change under us.
      const dptep0 = yield* pteAllocMap(env, dstMm, s);
      const dptl = ptlockPtr(env.mem, Math.floor(dptep0 / PAGE_SIZE));
      yield* dptl.lock();
      const sptl = pteLockptr(spt, yield* spt.pmdpGet(spmdp));
      yield* sptl.lockNested(SINGLE_DEPTH_NESTING);
      const sptep0 = (yield* spt.pteOffsetMap(spmdp, s)) as number;
      const rss = new Array<number>(NR_MM_COUNTERS).fill(0);
      for (let a = s, i = 0; a < e; a += PAGE_SIZE, i++) {
        const sptep = sptep0 + i * 8;
        let pte = yield* spt.ptepGet(sptep);
        if (!ptePresent(pte)) continue;
        const page = vmNormalPage(env, src, a, pte);
        if (page !== null) {
          yield* getPage(page);
          yield* pageMapcountInc(page); // folio_try_dup_anon_rmap_pte() / folio_dup_file_rmap_pte()
          rss[mmCounter(page)]++;
        }
        if (cow && pteWrite(pte)) {
          yield* spt.ptepSetWrprotect(a, sptep);
          pte = pteWrprotect(pte);
        }
        if (shared) pte = pteMkclean(pte);
        pte = pteMkold(pte);
        yield* dpt.setPteAt(a, dptep0 + i * 8, pte);
      }
      yield* addMmRssVec(dstMm, rss);
      yield* sptl.unlock();
      yield* dptl.unlock();
    });
  }

  /**
   * Models `move_page_tables()` and `move_ptes()` in mm/mremap.c: moves the PTEs of [oldAddr, oldAddr+len)
   * to newAddr, one extent (the part inside one PMD at both ends) at a time: `get_old_pmd()` (an extent with
   * no old table is skipped), `alloc_new_pmd()` and `pte_alloc()` with Linux's locks, then under the old
   * table's lock and the new one's (nested when different) each PTE is taken with `ptep_get_and_clear()` and
   * set at the new address; a present one is recorded in `tlb` (force_flush). Returns how many bytes were
   * moved: `len`, or the extents before the first table that could not be allocated.
   */
  *movePageTables(
    tlb: MmuGather,
    _vma: VmArea,
    oldAddr: number,
    _newVma: VmArea,
    newAddr: number,
    len: number,
  ): Kernel<number> {
    // page->index of anonymous pages stays valid: copy_vma() keeps vm_pgoff for faulted VMAs.
    const { pgd: pt, env, mm } = this;
    const pmdSpan = 2 ** levelShift[2];
    for (let done = 0; done < len; ) {
      const oldA = oldAddr + done;
      const newA = newAddr + done;
      const extent = Math.min(
        len - done,
        (Math.floor(oldA / pmdSpan) + 1) * pmdSpan - oldA,
        (Math.floor(newA / pmdSpan) + 1) * pmdSpan - newA,
      );
      const oldPmd = yield* this.getOldPmd(oldA);
      if (oldPmd !== null) {
        const newPmd = yield* pmdAllocWalk(env, mm, newA);
        if (newPmd === null || !(yield* pteAlloc(env, mm, newPmd))) return done;
        const olocked = yield* pteOffsetMapLock(pt, oldPmd, oldA);
        if (olocked !== null) {
          const nptl = pteLockptr(pt, yield* pt.pmdpGet(newPmd));
          const nested = nptl !== olocked.ptl;
          if (nested) yield* nptl.lockNested(SINGLE_DEPTH_NESTING);
          const nptep = (yield* pt.pteOffsetMap(newPmd, newA)) as number;
          for (let off = 0; off < extent; off += PAGE_SIZE) {
            const i = off / PAGE_SIZE;
            if (pteNone(yield* pt.ptepGet(olocked.ptep + i * 8))) continue;
            const pte = yield* pt.ptepGetAndClear(oldA + off, olocked.ptep + i * 8);
            if (ptePresent(pte)) tlb.needFlush = true; // move_ptes(): force_flush
            yield* pt.setPteAt(newA + off, nptep + i * 8, pte);
          }
          if (nested) yield* nptl.unlock();
          yield* olocked.ptl.unlock();
        }
      }
      done += extent;
    }
    return len;
  }

  /** Models `get_old_pmd()` in mm/mremap.c: the PMD pointer for `addr` if every level above exists and it links a table. */
  private *getOldPmd(addr: number): Kernel<number | null> {
    const pt = this.pgd;
    const pgdp = pt.pgdOffset(addr);
    const p4dp = yield* pt.p4dOffset(pgdp, addr);
    if (((yield* pt.p4dpGet(p4dp)) & _PAGE_PRESENT) === 0n) return null;
    const pudp = yield* pt.pudOffset(p4dp, addr);
    if (((yield* pt.pudpGet(pudp)) & _PAGE_PRESENT) === 0n) return null;
    const pmdp = yield* pt.pmdOffset(pudp, addr);
    if (pmdNone(yield* pt.pmdpGet(pmdp))) return null;
    return pmdp;
  }

  /**
   * Models `free_pgtables()`/`free_pgd_range()` in mm/memory.c: unlinks every page table (and then every
   * page directory and PDPT) that only served [start, end) — its whole span lies inside [floor, ceiling)
   * (0 as ceiling means the top of the address space). The frames are freed after the next TLB flush, or
   * (with `mm.pgtableFreeRcu`, `MMU_GATHER_RCU_TABLE_FREE`) by an RCU callback queued after that flush.
   */
  *freePgtables(tlb: MmuGather, floor: number, start: number, end: number, ceiling: number): Kernel<void> {
    const ceil = ceiling === 0 ? 2 ** 48 : ceiling;
    yield* this.freeRange(tlb, this.pgd.pgd, this.pgd.levels, floor, start, end, ceil);
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
    const pt = this.pgd;
    const span = 2 ** levelShift[level];
    let a = Math.floor(start / span) * span;
    for (; a < end; a += span) {
      const entryPa = tablePa + tableIndex(a, level) * 8;
      const e = yield* pt.readEntryK(entryPa, 'free_pgd_range');
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
      // Whether the child table is empty: an inspection of table contents the caller already emptied (Linux
      // frees without looking; a non-empty PTE table here is a bug, an upper one is still used elsewhere).
      let empty = true;
      for (let i = 0; i < 512 && empty; i++) empty = pteNone(this.mem.read64(child + i * 8));
      if (!empty) {
        kassert(level > 2, () => `free_pgtables: page table at 0x${child.toString(16)} still maps pages`);
        continue;
      }
      if (level === 2) yield* pt.pmdClear(entryPa);
      else if (level === 3) yield* pt.pudClear(entryPa);
      else if (level === 4) yield* pt.p4dClear(entryPa);
      else yield* pt.pgdClear(entryPa);
      const childLevel = (level - 1) as Level;
      tlb.needFlush = true; // pte_free_tlb() and friends set freed_tables
      const free = () => pt.freeTablePage(child / PAGE_SIZE, childLevel);
      // With MMU_GATHER_RCU_TABLE_FREE the page goes through tlb_remove_table(): freed by an RCU callback
      // once every rcu_read_lock section that may still walk it has ended.
      tlb.defer(this.mm.pgtableFreeRcu ? () => this.mm.rcu.callRcu(free) : free);
    }
  }

  *tlbFinishMmu(tlb: MmuGather, start: number, end: number): Kernel<void> {
    if (tlb.needFlush && this.mmu) yield* flushTlbMmRange(this.mmu, this.pgd, start, end);
    tlb.needFlush = false;
    // Pages and page-table pages unlinked before this flush can be freed now.
    yield* tlb.release();
  }

  *flushTlbMm(): Kernel<void> {
    if (this.mmu) yield* flushTlbMmRange(this.mmu, this.pgd, 0, this.mm.taskSize);
  }

  *flushTlbPage(addr: number): Kernel<void> {
    if (this.mmu) yield* flushTlbMmRange(this.mmu, this.pgd, addr, addr + PAGE_SIZE);
  }

  *presentPtes(start: number, end: number): Generator<PresentPte> {
    const { mm, mem, env } = this;
    function* walk(tablePa: number, level: Level, s: number, e: number): Generator<PresentPte> {
      const span = 2 ** levelShift[level];
      let a = s;
      while (a < e) {
        const regionEnd = Math.min(e, (Math.floor(a / span) + 1) * span);
        const entry = mem.read64(tablePa + tableIndex(a, level) * 8);
        if (level === 1) {
          if (ptePresent(entry)) {
            const vma = mm.vmaLookup(a);
            const page = vma === null ? null : vmNormalPage(env, vma, a, entry);
            yield {
              addr: a,
              pte: entry,
              writable: pteWrite(entry),
              user: pteUser(entry) && (entry & _PAGE_PRESENT) !== 0n,
              executable: pteExec(entry) && (entry & _PAGE_PRESENT) !== 0n,
              page,
              rssType: page === null ? -1 : mmCounter(page),
            };
          }
        } else if ((entry & _PAGE_PRESENT) !== 0n && (entry & _PAGE_PSE) === 0n) {
          yield* walk(entryTablePa(entry), (level - 1) as Level, a, regionEnd);
        }
        a = regionEnd;
      }
    }
    yield* walk(this.pgd.pgd, this.pgd.levels, start, Math.min(end, 2 ** 47));
  }

  /**
   * The end of `exit_mmap()`'s teardown (`free_pgtables()` of what is left, then `pgd_free()`): every CPU
   * that still has this address space loaded drops it and its TLB (the exiting task's final `switch_mm()`),
   * then every page-table page is freed. The pages must have been zapped.
   */
  destroy(): void {
    if (this.mmu !== null) {
      for (let c = 0; c < this.mmu.cpuCount; c++) {
        const st = this.mmu.cpu(c);
        if (st.mm === this.pgd) {
          this.mmu.flushAll(c);
          st.mm = null;
        }
      }
    }
    this.pgd.destroy(`exit_mmap of ${this.mm.name}`);
  }
}
