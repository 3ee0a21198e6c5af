import { delayEffect, type Kernel } from '@spf/machine';
import {
  _PAGE_TABLE,
  type Level,
  OutOfMemoryError,
  PAGE_SIZE,
  type PageTables,
  p4dPresent,
  pgdNone,
  pmdNone,
  pudNone,
  pudPresent,
} from '@spf/pagetable';
import type { MmStruct } from '../mm-struct.js';
import type { MemoryEnv } from './memory-env.js';
import { pmdLockptr } from './pte-lock.js';

/**
 * `pte_alloc_one()` / `pmd_alloc_one()` / ...: a zeroed page-table page, or null when memory is exhausted.
 * Clearing the page costs `cost.zeroPage`, as `__GFP_ZERO` does.
 */
function* allocTable(env: MemoryEnv, pt: PageTables, level: Level): Kernel<number | null> {
  const pfn = pt.allocTablePage(level);
  if (pfn === null) return null;
  env.vmstat.pgtableAlloc++;
  yield delayEffect(env.cost.zeroPage, 'clear_page (page table)');
  return pfn;
}

/**
 * The common shape of `__p4d_alloc()`, `__pud_alloc()` and `__pmd_alloc()` in mm/memory.c: allocate a table
 * first (it may sleep), then take `mm->page_table_lock` (`pud_lock()` is that lock on x86-64) and install it
 * only if the parent entry is still empty; a CPU that lost the race frees its table. Returns false when out
 * of memory.
 */
function* allocUnderPageTableLock(
  env: MemoryEnv,
  mm: MmStruct,
  parentp: number,
  level: Level,
  present: (e: bigint) => boolean,
): Kernel<boolean> {
  const pt = mm.pgd;
  const pfn = yield* allocTable(env, pt, level);
  if (pfn === null) return false;
  yield* mm.pageTableLock.lock();
  const cur = yield* pt.readEntryK(parentp, 'populate check');
  const install = !present(cur);
  if (install) yield* pt.writeEntryK(parentp, BigInt(pfn * PAGE_SIZE) | _PAGE_TABLE, 'populate');
  yield* mm.pageTableLock.unlock();
  if (!install) yield* pt.freeTablePage(pfn, level);
  return true;
}

/**
 * Models `p4d_alloc()` / `__p4d_alloc()` in include/linux/mm.h and mm/memory.c: the p4d pointer for `addr`
 * under the pgd entry `pgdp`, allocating the table under `mm->page_table_lock` if it is missing. With
 * 4-level paging the p4d is folded into the pgd and this returns `pgdp`. Null when out of memory.
 */
export function* p4dAlloc(env: MemoryEnv, mm: MmStruct, pgdp: number, addr: number): Kernel<number | null> {
  const pt = mm.pgd;
  if (!pt.la57) return pgdp;
  const e = yield* pt.pgdpGet(pgdp);
  if (pgdNone(e) && !(yield* allocUnderPageTableLock(env, mm, pgdp, 4, p4dPresent))) return null;
  return yield* pt.p4dOffset(pgdp, addr);
}

/** Models `pud_alloc()` / `__pud_alloc()`: the PUD pointer for `addr`, or null when out of memory. */
export function* pudAlloc(env: MemoryEnv, mm: MmStruct, p4dp: number, addr: number): Kernel<number | null> {
  const pt = mm.pgd;
  // p4dp_get() and pud_offset() in their inline forms (no generator frame each, the same two reads).
  yield pt.p4dpGetEffect(p4dp);
  if (pudNone(pt.entry(p4dp)) && !(yield* allocUnderPageTableLock(env, mm, p4dp, 3, p4dPresent))) return null;
  yield pt.pudOffsetEffect(p4dp);
  return pt.lowerEntryPointer(pt.entry(p4dp), addr, 3);
}

/**
 * Models `pmd_alloc()` / `__pmd_alloc()`: the page directory is installed under `pud_lock()`, which on
 * x86-64 is `mm->page_table_lock`. Returns the PMD pointer or null when out of memory.
 */
export function* pmdAlloc(env: MemoryEnv, mm: MmStruct, pudp: number, addr: number): Kernel<number | null> {
  const pt = mm.pgd;
  // pudp_get() and pmd_offset() in their inline forms (no generator frame each, the same two reads).
  yield pt.pudpGetEffect(pudp);
  if (pudNone(pt.entry(pudp)) && !(yield* allocUnderPageTableLock(env, mm, pudp, 2, pudPresent))) return null;
  yield pt.pmdOffsetEffect(pudp);
  return pt.lowerEntryPointer(pt.entry(pudp), addr, 2);
}

/**
 * Models `pte_alloc()` / `__pte_alloc()` and `pmd_install()` in mm/memory.c: if the PMD at `pmdp` is empty,
 * allocate a PTE table, then install it under the split PMD lock (`pmd_lock()`) only if the PMD is still
 * empty (a CPU that lost the race frees its table). Returns false when out of memory.
 */
export function* pteAlloc(env: MemoryEnv, mm: MmStruct, pmdp: number): Kernel<boolean> {
  const pt = mm.pgd;
  yield pt.pmdpGetEffect(pmdp); // pmdp_get(), inline form
  if (!pmdNone(pt.entry(pmdp))) return true;
  const pfn = yield* allocTable(env, pt, 1);
  if (pfn === null) return false;
  const ptl = pmdLockptr(pt, pmdp);
  yield* ptl.lock();
  const cur = yield* pt.pmdpGet(pmdp);
  const install = pmdNone(cur);
  if (install) yield* pt.writeEntryK(pmdp, BigInt(pfn * PAGE_SIZE) | _PAGE_TABLE, 'pmd_populate');
  yield* ptl.unlock();
  if (!install) yield* pt.freeTablePage(pfn, 1);
  return true;
}

/**
 * Models `__handle_mm_fault()`'s walk down to the PMD and `alloc_new_pmd()` in mm/mremap.c: the PMD pointer
 * for `addr`, allocating the p4d, pud and pmd tables that are missing ({@link p4dAlloc}, {@link pudAlloc},
 * {@link pmdAlloc}). Null when out of memory.
 */
export function* pmdAllocWalk(env: MemoryEnv, mm: MmStruct, addr: number): Kernel<number | null> {
  const pgdp = mm.pgd.pgdOffset(addr);
  const p4dp = yield* p4dAlloc(env, mm, pgdp, addr);
  if (p4dp === null) return null;
  const pudp = yield* pudAlloc(env, mm, p4dp, addr);
  if (pudp === null) return null;
  return yield* pmdAlloc(env, mm, pudp, addr);
}

/**
 * Models `pte_alloc_map()` in include/linux/mm.h after {@link pmdAllocWalk}: the pointer of `addr`'s PTE,
 * allocating every missing table with Linux's locks. Throws @spf/pagetable's OutOfMemoryError when a table
 * cannot be allocated (the syscalls turn it into ENOMEM: fork in dupMmap, mremap in move_vma).
 */
export function* pteAllocMap(env: MemoryEnv, mm: MmStruct, addr: number): Kernel<number> {
  const pmdp = yield* pmdAllocWalk(env, mm, addr);
  if (pmdp === null || !(yield* pteAlloc(env, mm, pmdp))) throw tableOom(addr);
  const ptep = yield* mm.pgd.pteOffsetMap(pmdp, addr);
  if (ptep === null) throw tableOom(addr);
  return ptep;
}

/** The error of a page-table allocation for `addr` that found no free frame. */
function tableOom(addr: number): OutOfMemoryError {
  return new OutOfMemoryError(
    `out of simulated memory allocating a page table for 0x${addr.toString(16)}`,
    0,
  );
}

/**
 * The allocation Lespinasse's question 3 proposes for a speculative fault (no mmap_lock): with
 * `mm->page_table_lock` already held by the caller, who has re-validated the VMA under it, install every
 * missing table on the way to `addr`'s PTE table: p4d (5-level paging), pud and pmd directly (the lock
 * `__p4d_alloc()`/`__pud_alloc()`/`__pmd_alloc()` take is the one held), and the PTE table as `pmd_install()`
 * does, under the split PMD lock nested inside. Only safe when unmapping frees page tables under the same
 * lock (`MmConfig.freePgtablesUnderPtl`). Simplification: the tables are allocated with the lock held (the
 * allocator never sleeps here). Returns false when out of memory (what was installed stays, as in Linux).
 */
export function* pgtableAllocUnderPtl(env: MemoryEnv, mm: MmStruct, addr: number): Kernel<boolean> {
  const pt = mm.pgd;
  const install = function* (parentp: number, level: Level, present: boolean): Kernel<boolean> {
    if (present) return true;
    const pfn = yield* allocTable(env, pt, level);
    if (pfn === null) return false;
    yield* pt.writeEntryK(parentp, BigInt(pfn * PAGE_SIZE) | _PAGE_TABLE, 'populate (speculative)');
    return true;
  };
  const pgdp = pt.pgdOffset(addr);
  let p4dp = pgdp;
  if (pt.la57) {
    if (!(yield* install(pgdp, 4, !pgdNone(yield* pt.pgdpGet(pgdp))))) return false;
    p4dp = yield* pt.p4dOffset(pgdp, addr);
  }
  if (!(yield* install(p4dp, 3, !pudNone(yield* pt.p4dpGet(p4dp))))) return false;
  const pudp = yield* pt.pudOffset(p4dp, addr);
  if (!(yield* install(pudp, 2, !pudNone(yield* pt.pudpGet(pudp))))) return false;
  const pmdp = yield* pt.pmdOffset(pudp, addr);
  if (!pmdNone(yield* pt.pmdpGet(pmdp))) return true;
  const pfn = yield* allocTable(env, pt, 1);
  if (pfn === null) return false;
  const ptl = pmdLockptr(pt, pmdp);
  yield* ptl.lock();
  const ok = pmdNone(yield* pt.pmdpGet(pmdp));
  if (ok) yield* pt.writeEntryK(pmdp, BigInt(pfn * PAGE_SIZE) | _PAGE_TABLE, 'pmd_populate (speculative)');
  yield* ptl.unlock();
  if (!ok) yield* pt.freeTablePage(pfn, 1);
  return true;
}
