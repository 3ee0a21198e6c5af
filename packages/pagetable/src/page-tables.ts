import { type Kernel, type MemoryEffect, self, readEffect, writeEffect, rmwEffect } from '@spf/machine';
import { checkCanonical } from './canonical.js';
import { CpuMask } from './cpu-mask.js';
import {
  type Level,
  levelShift,
  levelTableNames,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  PAGE_SIZE,
  _PAGE_TABLE,
  _PAGE_USER,
  PTE_PFN_MASK,
} from './entry-bits.js';
import {
  InvalidArgumentError,
  MappingConflictError,
  MisalignedAddressError,
  OutOfMemoryError,
  PhysicalAddressError,
} from './errors.js';
import { type Page, PG } from './page.js';
import type { PhysicalMemory } from './physical-memory.js';
import { pmdBad, pmdLeaf, pmdNone, pmdPresent, pteNone, pteSame } from './pte.js';
import type { PageSize } from './walker.js';

/** A virtual address: a non-negative safe integer, or a bigint (needed for kernel-half and >2^53 addresses). */
export type VirtAddr = number | bigint;

/** How {@link PageTables} are built. */
export type PageTablesOptions = {
  /** 5-level paging (LA57); default false (4-level). */
  readonly la57?: boolean;
  /** The PCID the address space runs under (0 to 4095, default 0). */
  readonly pcid?: number;
};

/** Options of {@link PageTables.map}. */
export type MapOptions = {
  /** Page size (default 4096). */
  readonly size?: PageSize;
  /**
   * Leaf entry bits (default P RW US), ORed with `pa` as given, so tests can also set address bits above
   * MAXPHYADDR or PAT (bit 12 of a large page). PS is added for 2 MiB and 1 GiB pages.
   */
  readonly flags?: bigint;
  /** Bits of newly created intermediate entries, ORed with the table address (default `_PAGE_TABLE`: P RW US A D). */
  readonly tableFlags?: bigint;
  /** Replace an existing leaf entry instead of throwing {@link MappingConflictError}. */
  readonly replace?: boolean;
};

/** One step of a software walk ({@link PageTables.lookup}). */
export type WalkStep = {
  readonly level: Level;
  /** Physical address of the entry. */
  readonly entryPa: number;
  readonly entry: bigint;
};

const sizeLevel = (size: PageSize): Level => (size === PAGE_SIZE ? 1 : size === 2097152 ? 2 : 3);

/** `2 ** levelShift[level]`, precomputed (tableIndex runs several times per fault). */
const levelSpan: readonly number[] = levelShift.map((s) => 2 ** s);

/** Index of `addr` in the table at `level`. */
export function tableIndex(addr: VirtAddr, level: Level): number {
  if (typeof addr === 'number') return Math.floor(addr / levelSpan[level]) % 512;
  return Number((addr >> BigInt(levelShift[level])) & 511n);
}

/** Physical address of the table an entry links to (bits 51:12). */
export function entryTablePa(entry: bigint): number {
  return Number(entry & PTE_PFN_MASK);
}

/**
 * The page tables of one address space (the page-table half of `mm_struct`: `mm->pgd`, the counters,
 * `mm_cpumask`) and the kernel's page-table API after include/linux/pgtable.h and arch/x86.
 *
 * Entry pointers (`pgd_t *`, `pte_t *` ...) are physical addresses of entries (numbers); entry values are
 * bigints. Every read or write of an entry in a `*method` (kernel form) is a machine effect on the entry's
 * memory line (`mem.lineOf(pa)`), so lockless walkers racing with updates or with the freeing of a table
 * are visible on a Machine; freed table frames are poisoned, so a stale walk raises `UseAfterFreeError`.
 * Drive a kernel form synchronously with `runSync(pt.setPteAt(...))`; {@link map}, {@link lookup} and the
 * other plain methods are the synchronous API for building tables from the outside (tests, labs, the CLI).
 *
 * With 4-level paging, p4d is folded into pgd as in Linux: `p4dOffset()` returns the pgd pointer itself.
 * Page-table locks and the allocation of page tables under them (`__pte_alloc()` and friends) are not here:
 * they belong to the kernel (@spf/vma's memory area); each table's {@link Page.ptl} is the slot for its
 * split lock, and {@link allocTablePage}/{@link freeTablePage} are the frame allocator they use.
 */
export class PageTables {
  readonly mem: PhysicalMemory;
  readonly la57: boolean;
  /** Number of levels (4 or 5). */
  readonly levels: 4 | 5;
  /** Physical address of the top-level table (`mm->pgd`; PML4, or PML5 with LA57). */
  readonly pgd: number;
  /** `mm_cpumask(mm)`: CPUs that may cache translations of this address space. */
  readonly cpumask = new CpuMask();
  /** The PCID this address space runs under. */
  readonly pcid: number;
  /** Page-table pages in use at each level (index = level; `mm->pgtables_bytes` split by level). */
  readonly tables: number[] = [0, 0, 0, 0, 0, 0];

  constructor(mem: PhysicalMemory, opts: PageTablesOptions = {}) {
    const pcid = opts.pcid ?? 0;
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > 4095) {
      throw new InvalidArgumentError(`pcid must be an integer from 0 to 4095, got ${pcid}`);
    }
    this.mem = mem;
    this.la57 = opts.la57 ?? false;
    this.levels = this.la57 ? 5 : 4;
    this.pcid = pcid;
    const pfn = mem.allocFrames(0);
    mem.flagWords[pfn] |= PG.table;
    this.pgd = pfn * PAGE_SIZE;
    this.tables[this.levels] = 1;
  }

  // ---- entry access (kernel form) ----------------------------------------------------------------

  /** `READ_ONCE(*p)`: one read effect on the entry's line, then the value (poison-checked). */
  *readEntryK(p: number, label?: string): Kernel<bigint> {
    yield readEffect(this.mem.lineOf(p), label);
    return this.mem.read64(p);
  }
  /** `WRITE_ONCE(*p, v)`: one write effect. */
  *writeEntryK(p: number, v: bigint, label?: string): Kernel<void> {
    yield writeEffect(this.mem.lineOf(p), label);
    this.mem.write64(p, v);
  }
  /** `ptep_get()`. */
  *ptepGet(ptep: number): Kernel<bigint> {
    yield this.ptepGetEffect(ptep);
    return this.entry(ptep);
  }
  /** `pmdp_get()` / `pmdp_get_lockless()`. */
  *pmdpGet(pmdp: number): Kernel<bigint> {
    yield this.pmdpGetEffect(pmdp);
    return this.entry(pmdp);
  }
  /** `pudp_get()`. */
  *pudpGet(pudp: number): Kernel<bigint> {
    yield this.pudpGetEffect(pudp);
    return this.entry(pudp);
  }
  /** `p4dp_get()`. */
  *p4dpGet(p4dp: number): Kernel<bigint> {
    yield this.p4dpGetEffect(p4dp);
    return this.entry(p4dp);
  }

  // ---- the inline forms of the one-read accessors ----------------------------------------------------------
  // `yield pt.ptepGetEffect(p); const pte = pt.entry(p);` is `const pte = yield* pt.ptepGet(p)` without the
  // generator frame: the same effect (same line and label) and the same value. The fault path uses these
  // forms where a frame per entry read is a measurable share of the host time of a fault (issue 16).

  /** The read effect of {@link ptepGet}. */
  ptepGetEffect(ptep: number): MemoryEffect {
    return readEffect(this.mem.lineOf(ptep), 'ptep_get');
  }
  /** The read effect of {@link pmdpGet}. */
  pmdpGetEffect(pmdp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(pmdp), 'pmdp_get');
  }
  /** The read effect of {@link pudpGet}. */
  pudpGetEffect(pudp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(pudp), 'pudp_get');
  }
  /** The read effect of {@link pgdpGet}. */
  pgdpGetEffect(pgdp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(pgdp), 'pgdp_get');
  }
  /** The read effect of {@link p4dpGet}. */
  p4dpGetEffect(p4dp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(p4dp), 'p4dp_get');
  }
  /** The read effect of {@link pudOffset}. */
  pudOffsetEffect(p4dp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(p4dp), 'pud_offset');
  }
  /** The read effect of {@link pmdOffset}. */
  pmdOffsetEffect(pudp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(pudp), 'pmd_offset');
  }
  /** The read effect of {@link pteOffsetMap}. */
  pteOffsetMapEffect(pmdp: number): MemoryEffect {
    return readEffect(this.mem.lineOf(pmdp), 'pte_offset_map');
  }
  /** The write effect of {@link setPteAt}. */
  setPteAtEffect(ptep: number): MemoryEffect {
    return writeEffect(this.mem.lineOf(ptep), 'set_pte_at');
  }
  /** The entry at `p` now: what a read effect on its line just performed reads (poison-checked). */
  entry(p: number): bigint {
    return this.mem.read64(p);
  }
  /** The arithmetic of {@link pudOffset} and {@link pmdOffset}: the entry for `addr` in the table `upper` links. */
  lowerEntryPointer(upper: bigint, addr: VirtAddr, level: Level): number {
    return entryTablePa(upper) + tableIndex(addr, level) * 8;
  }
  /** `pgdp_get()`. */
  *pgdpGet(pgdp: number): Kernel<bigint> {
    yield this.pgdpGetEffect(pgdp);
    return this.entry(pgdp);
  }

  // ---- offsets --------------------------------------------------------------------------------

  /** `pgd_offset(mm, addr)`: pointer to the top-level entry for `addr` (arithmetic only). */
  pgdOffset(addr: VirtAddr): number {
    return this.pgd + tableIndex(addr, this.levels) * 8;
  }
  /** `p4d_offset(pgd, addr)`: with 4-level paging the pgd pointer itself (folded); else reads `*pgd`. */
  *p4dOffset(pgdp: number, addr: VirtAddr): Kernel<number> {
    if (!this.la57) return pgdp;
    yield readEffect(this.mem.lineOf(pgdp), 'p4d_offset');
    const e = this.mem.read64(pgdp);
    return entryTablePa(e) + tableIndex(addr, 4) * 8;
  }
  /** `pud_offset(p4d, addr)`: reads `*p4d` and points into the PDPT it links. */
  *pudOffset(p4dp: number, addr: VirtAddr): Kernel<number> {
    yield this.pudOffsetEffect(p4dp);
    return this.lowerEntryPointer(this.entry(p4dp), addr, 3);
  }
  /** `pmd_offset(pud, addr)`: reads `*pud` and points into the page directory it links. */
  *pmdOffset(pudp: number, addr: VirtAddr): Kernel<number> {
    yield this.pmdOffsetEffect(pudp);
    return this.lowerEntryPointer(this.entry(pudp), addr, 2);
  }
  /**
   * `pte_offset_map(pmd, addr)` (mm/pgtable-generic.c `__pte_offset_map()`): reads the PMD once and, if it
   * links a page table, returns the PTE pointer; returns null when the PMD is none, a huge leaf or bad.
   * Linux also enters an RCU read-side section here (ended by `pte_unmap()`); RCU is @spf/locks' business, so
   * callers that need it take it themselves.
   */
  *pteOffsetMap(pmdp: number, addr: VirtAddr): Kernel<number | null> {
    yield this.pteOffsetMapEffect(pmdp);
    return this.pteOffsetIn(this.entry(pmdp), addr);
  }
  /** The decision of {@link pteOffsetMap} on the PMD value it read: the PTE pointer, or null. */
  pteOffsetIn(pmd: bigint, addr: VirtAddr): number | null {
    if (pmdNone(pmd) || !pmdPresent(pmd) || pmdLeaf(pmd) || pmdBad(pmd)) return null;
    return this.lowerEntryPointer(pmd, addr, 1);
  }
  /** `pte_unmap()`: nothing to undo here (x86-64 has no highmem; see {@link pteOffsetMap} about RCU). */
  pteUnmap(_ptep: number | null): void {}

  // ---- updates ------------------------------------------------------------------------------

  /** `set_pte_at(mm, addr, ptep, pte)`: a plain store of the entry. */
  *setPteAt(_addr: VirtAddr, ptep: number, pte: bigint): Kernel<void> {
    yield this.setPteAtEffect(ptep);
    this.mem.write64(ptep, pte);
  }
  /** `set_pmd_at()`. */
  *setPmdAt(_addr: VirtAddr, pmdp: number, pmd: bigint): Kernel<void> {
    yield writeEffect(this.mem.lineOf(pmdp), 'set_pmd_at');
    this.mem.write64(pmdp, pmd);
  }
  /** `set_pud_at()`. */
  *setPudAt(_addr: VirtAddr, pudp: number, pud: bigint): Kernel<void> {
    yield writeEffect(this.mem.lineOf(pudp), 'set_pud_at');
    this.mem.write64(pudp, pud);
  }
  /** `pte_clear()`. */
  *pteClear(_addr: VirtAddr, ptep: number): Kernel<void> {
    yield writeEffect(this.mem.lineOf(ptep), 'pte_clear');
    this.mem.write64(ptep, 0n);
  }
  /** `pmd_clear()`. */
  *pmdClear(pmdp: number): Kernel<void> {
    yield writeEffect(this.mem.lineOf(pmdp), 'pmd_clear');
    this.mem.write64(pmdp, 0n);
  }
  /** `pud_clear()`. */
  *pudClear(pudp: number): Kernel<void> {
    yield writeEffect(this.mem.lineOf(pudp), 'pud_clear');
    this.mem.write64(pudp, 0n);
  }
  /** `p4d_clear()`. */
  *p4dClear(p4dp: number): Kernel<void> {
    yield writeEffect(this.mem.lineOf(p4dp), 'p4d_clear');
    this.mem.write64(p4dp, 0n);
  }
  /** `pgd_clear()`. */
  *pgdClear(pgdp: number): Kernel<void> {
    yield writeEffect(this.mem.lineOf(pgdp), 'pgd_clear');
    this.mem.write64(pgdp, 0n);
  }
  /**
   * `ptep_get_and_clear()` (arch/x86: `native_ptep_get_and_clear()` is an `xchg`): atomically reads and
   * clears the entry, so a concurrent hardware A/D update cannot be lost.
   */
  *ptepGetAndClear(_addr: VirtAddr, ptep: number): Kernel<bigint> {
    yield rmwEffect(this.mem.lineOf(ptep), 'ptep_get_and_clear');
    const old = this.mem.read64(ptep);
    this.mem.write64(ptep, 0n);
    return old;
  }
  /** `pmdp_huge_get_and_clear()`. */
  *pmdpHugeGetAndClear(addr: VirtAddr, pmdp: number): Kernel<bigint> {
    return yield* this.ptepGetAndClear(addr, pmdp);
  }
  /**
   * `ptep_set_access_flags()` in arch/x86/mm/pgtable.c: if `entry` differs from the current entry and
   * `dirty` is set, store it; returns whether they differed. (The fault path only relaxes permissions here.)
   */
  *ptepSetAccessFlags(_addr: VirtAddr, ptep: number, entry: bigint, dirty: boolean): Kernel<boolean> {
    yield readEffect(this.mem.lineOf(ptep), 'ptep_set_access_flags');
    const cur = this.mem.read64(ptep);
    const changed = !pteSame(cur, entry);
    if (changed && dirty) yield* this.writeEntryK(ptep, entry, 'ptep_set_access_flags');
    return changed;
  }
  /** `ptep_set_wrprotect()`: atomically clears R/W (`clear_bit()`). */
  *ptepSetWrprotect(_addr: VirtAddr, ptep: number): Kernel<void> {
    yield rmwEffect(this.mem.lineOf(ptep), 'ptep_set_wrprotect');
    this.mem.write64(ptep, this.mem.read64(ptep) & ~_PAGE_RW);
  }
  /** `ptep_test_and_clear_young()`: atomically clears A, returning whether it was set. */
  *ptepTestAndClearYoung(_addr: VirtAddr, ptep: number): Kernel<boolean> {
    yield rmwEffect(this.mem.lineOf(ptep), 'ptep_test_and_clear_young');
    const v = this.mem.read64(ptep);
    this.mem.write64(ptep, v & ~0x20n);
    return (v & 0x20n) !== 0n;
  }
  /**
   * `ptep_modify_prot_start()` (include/linux/pgtable.h, the generic `__ptep_modify_prot_start()` x86-64
   * uses): takes the PTE for a protection change by clearing it atomically (`ptep_get_and_clear()`), so that
   * no CPU's MMU can set Accessed or Dirty in it while the new value is computed: a CPU that needs the entry
   * meanwhile walks to a none PTE and faults. Returns the old value, A/D bits included. The caller holds the
   * PTE lock and must end with {@link ptepModifyProtCommit}.
   */
  *ptepModifyProtStart(addr: VirtAddr, ptep: number): Kernel<bigint> {
    return yield* this.ptepGetAndClear(addr, ptep);
  }
  /**
   * `ptep_modify_prot_commit()`: installs `pte`, the new value computed from `oldPte` (what
   * {@link ptepModifyProtStart} returned), with `set_pte_at()`.
   */
  *ptepModifyProtCommit(addr: VirtAddr, ptep: number, _oldPte: bigint, pte: bigint): Kernel<void> {
    yield* this.setPteAt(addr, ptep, pte);
  }

  // ---- allocation and freeing of page-table pages --------------------------------------------------

  /** `pte_alloc_one()` and friends: a zeroed page-table page marked PG_table, or null when out of memory. */
  allocTablePage(level: Level): number | null {
    let pfn: number;
    try {
      pfn = this.mem.allocFrames(0);
    } catch (e) {
      if (e instanceof OutOfMemoryError) return null;
      throw e;
    }
    this.mem.flagWords[pfn] |= PG.table;
    this.tables[level]++;
    return pfn;
  }

  /**
   * Frees a page-table page (`pte_free()`, `pmd_free()`, `pud_free()`, `p4d_free()`): the frame is poisoned,
   * so a lockless walker that still reads it reports a use-after-free naming this task.
   */
  *freeTablePage(pfn: number, level: Level): Kernel<void> {
    const page = this.mem.page(pfn);
    yield rmwEffect(page.line, 'pagetable_free');
    const s = yield* self();
    this.mem.flagWords[pfn] &= ~PG.table;
    this.tables[level]--;
    this.mem.freeFrames(pfn, 0, `${levelTableNames[level]} free by task '${s.task.name}' on CPU ${s.cpu}`);
  }
  /** `pte_free(mm, table)`. */
  *pteFree(tablePa: number): Kernel<void> {
    yield* this.freeTablePage(Math.floor(tablePa / PAGE_SIZE), 1);
  }
  /** `pmd_free(mm, table)`. */
  *pmdFree(tablePa: number): Kernel<void> {
    yield* this.freeTablePage(Math.floor(tablePa / PAGE_SIZE), 2);
  }
  /** `pud_free(mm, table)`. */
  *pudFree(tablePa: number): Kernel<void> {
    yield* this.freeTablePage(Math.floor(tablePa / PAGE_SIZE), 3);
  }
  /** `p4d_free(mm, table)`. */
  *p4dFree(tablePa: number): Kernel<void> {
    yield* this.freeTablePage(Math.floor(tablePa / PAGE_SIZE), 4);
  }
  /**
   * `free_pte_range()` (mm/memory.c): unlinks the page table under `*pmdp` and frees it. The caller must have
   * emptied it and must flush the TLBs (hardware may cache paging-structure entries) before others can reuse
   * the frame; here the frame is poisoned at once.
   */
  *freePteRange(pmdp: number): Kernel<void> {
    yield readEffect(this.mem.lineOf(pmdp), 'free_pte_range');
    const pmd = this.mem.read64(pmdp);
    if (pmdNone(pmd) || pmdLeaf(pmd)) return;
    yield* this.pmdClear(pmdp);
    yield* this.pteFree(entryTablePa(pmd));
  }

  /**
   * The `struct page` of the page-table page holding entry pointer `p` (what `pte_lockptr()` and
   * `pmd_lockptr()` reach: its {@link Page.ptl} slot holds the split page-table lock).
   */
  tablePageOf(p: number): Page {
    return this.mem.page(Math.floor(p / PAGE_SIZE));
  }

  // ---- synchronous API -------------------------------------------------------------------------

  /** Reads the entry at `p` without an effect. */
  readEntry(p: number): bigint {
    return this.mem.read64(p);
  }
  /** Writes the entry at `p` without an effect. */
  writeEntry(p: number, v: bigint): void {
    this.mem.write64(p, v);
  }

  /**
   * A software walk of `va` (no permission checks, no A/D updates): the entries from the top level down to
   * the leaf or the first entry that is not present.
   */
  lookup(va: VirtAddr): WalkStep[] {
    checkCanonical(va, this.la57);
    const steps: WalkStep[] = [];
    let table = this.pgd;
    for (let level = this.levels as Level; level >= 1; level--) {
      const entryPa = table + tableIndex(va, level) * 8;
      const entry = this.mem.read64(entryPa);
      steps.push({ level, entryPa, entry });
      if ((entry & _PAGE_PRESENT) === 0n) break;
      if (level === 1 || ((level === 2 || level === 3) && (entry & _PAGE_PSE) !== 0n)) break;
      table = entryTablePa(entry);
    }
    return steps;
  }

  /** The leaf (or last) step of {@link lookup}, when it is present. */
  leaf(va: VirtAddr): WalkStep | null {
    const steps = this.lookup(va);
    const last = steps[steps.length - 1];
    return (last.entry & _PAGE_PRESENT) !== 0n ? last : null;
  }

  /**
   * Maps `va` to physical address `pa` with a 4 KiB, 2 MiB or 1 GiB page, creating intermediate tables as
   * needed. Validates everything first and throws a typed error ({@link NonCanonicalAddressError},
   * {@link MisalignedAddressError}, {@link PhysicalAddressError}, {@link MappingConflictError},
   * {@link OutOfMemoryError}) leaving the tables unchanged. Returns the physical address of the leaf entry.
   */
  map(va: VirtAddr, pa: number | bigint, opts: MapOptions = {}): number {
    const size = opts.size ?? PAGE_SIZE;
    if (size !== PAGE_SIZE && size !== 2097152 && size !== 1073741824) {
      throw new InvalidArgumentError(`page size must be 4096, 2097152 or 1073741824, got ${String(size)}`);
    }
    const vaBig = checkCanonical(va, this.la57);
    const paBig = BigInt(pa);
    if (vaBig % BigInt(size) !== 0n) {
      throw new MisalignedAddressError(
        `virtual address 0x${vaBig.toString(16)} is not aligned to ${size} bytes`,
      );
    }
    if (paBig < 0n || paBig % BigInt(size) !== 0n) {
      throw new MisalignedAddressError(
        `physical address 0x${paBig.toString(16)} is not aligned to ${size} bytes`,
      );
    }
    if (paBig >= 1n << BigInt(this.mem.maxPhyAddr)) {
      throw new PhysicalAddressError(
        `physical address 0x${paBig.toString(16)} is beyond MAXPHYADDR (${this.mem.maxPhyAddr} bits)`,
      );
    }
    const leafLevel = sizeLevel(size);
    let flags = opts.flags ?? _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;
    if (leafLevel > 1) flags |= _PAGE_PSE;
    const tableFlags = opts.tableFlags ?? _PAGE_TABLE;
    // Pass 1: find what exists and check for conflicts, counting the tables to create.
    let table = this.pgd;
    let missing = 0;
    let level = this.levels as Level;
    for (; level > leafLevel; level--) {
      const e = this.mem.read64(table + tableIndex(va, level) * 8);
      if (pteNone(e)) {
        missing = level - leafLevel;
        break;
      }
      if ((e & _PAGE_PRESENT) === 0n || ((level === 2 || level === 3) && (e & _PAGE_PSE) !== 0n)) {
        throw new MappingConflictError(
          `cannot map 0x${vaBig.toString(16)}: the ${levelTableNames[level]} entry is ${(e & _PAGE_PRESENT) === 0n ? 'not present but not empty' : 'a large-page leaf'}; unmap it first`,
        );
      }
      table = entryTablePa(e);
    }
    if (missing === 0) {
      const e = this.mem.read64(table + tableIndex(va, leafLevel) * 8);
      if (leafLevel > 1 && (e & _PAGE_PRESENT) !== 0n && (e & _PAGE_PSE) === 0n) {
        throw new MappingConflictError(
          `cannot map a ${size}-byte page at 0x${vaBig.toString(16)}: a ${levelTableNames[leafLevel - 1]} is linked there; unmap its pages and free it first`,
        );
      }
      if (!pteNone(e) && !opts.replace) {
        throw new MappingConflictError(
          `cannot map 0x${vaBig.toString(16)}: already mapped (${levelTableNames[leafLevel]} entry 0x${e.toString(16)}); pass replace: true or unmap it first`,
        );
      }
    }
    if (missing > this.mem.freeCount) {
      throw new OutOfMemoryError(
        `out of memory: mapping 0x${vaBig.toString(16)} needs ${missing} page-table pages, ${this.mem.freeCount} frames are free`,
        0,
      );
    }
    // Pass 2: create the missing tables and write the leaf.
    table = this.pgd;
    for (let l = this.levels as Level; l > leafLevel; l--) {
      const p = table + tableIndex(va, l) * 8;
      let e = this.mem.read64(p);
      if (pteNone(e)) {
        const pfn = this.allocTablePage((l - 1) as Level)!;
        e = BigInt(pfn * PAGE_SIZE) | tableFlags;
        this.mem.write64(p, e);
      }
      table = entryTablePa(e);
    }
    const leafPa = table + tableIndex(va, leafLevel) * 8;
    this.mem.write64(leafPa, paBig | flags);
    return leafPa;
  }

  /**
   * Clears the leaf entry mapping `va` (any page size) and returns its old value (0n if nothing was mapped).
   * Page-table pages are kept (free them with the kernel API or {@link destroy}); TLBs are not flushed.
   */
  unmap(va: VirtAddr): bigint {
    const leaf = this.leaf(va);
    if (leaf === null) return 0n;
    this.mem.write64(leaf.entryPa, 0n);
    return leaf.entry;
  }

  /**
   * Software translation: the physical address `va` maps to, ignoring permissions, or null. A numeric
   * result is exact because physical addresses are below 2^52.
   */
  translate(va: VirtAddr): number | null {
    const leaf = this.leaf(va);
    if (leaf === null) return null;
    const size = 2 ** levelShift[leaf.level];
    const off = typeof va === 'number' ? va % size : Number(BigInt(va) % BigInt(size));
    const base = Number(leaf.entry & PTE_PFN_MASK & ~BigInt(size - 1));
    return base + off;
  }

  /**
   * Frees every page-table page of this address space, top level included (`free_pgtables()` plus
   * `pgd_free()` at exit). Leaf data frames are not touched. Synchronous; the tables must not be used again.
   */
  destroy(who = 'PageTables.destroy'): void {
    const walk = (tablePa: number, level: Level): void => {
      if (level > 1) {
        for (let i = 0; i < 512; i++) {
          const e = this.mem.read64(tablePa + i * 8);
          if ((e & _PAGE_PRESENT) === 0n) continue;
          if ((level === 2 || level === 3) && (e & _PAGE_PSE) !== 0n) continue;
          walk(entryTablePa(e), (level - 1) as Level);
        }
      }
      const pfn = tablePa / PAGE_SIZE;
      this.mem.flagWords[pfn] &= ~PG.table;
      this.tables[level]--;
      this.mem.freeFrames(pfn, 0, who);
    };
    walk(this.pgd, this.levels);
  }
}
