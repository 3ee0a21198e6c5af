import { type Kernel, delayEffect } from '@spf/machine';
import {
  _PAGE_TABLE,
  type PageTables,
  p4dPresent,
  pgdNone,
  pmdNone,
  pudNone,
  pudPresent,
} from '@spf/pagetable';
import type { MmStruct } from '@spf/vma';
import type { FaultEnv } from './fault-env.js';
import { pmdLockptr } from './pte-lock.js';

/** Levels of the x86-64 paging hierarchy as @spf/pagetable numbers them: 1 = PTE table ... 5 = PML5. */
type TableLevel = 1 | 2 | 3 | 4;

/**
 * `pte_alloc_one()` / `pmd_alloc_one()` / ...: a zeroed page-table page, or null when memory is exhausted.
 * Clearing the page costs `cost.zeroPage`, as `__GFP_ZERO` does.
 */
function* allocTable(env: FaultEnv, pt: PageTables, level: TableLevel): Kernel<number | null> {
  const pfn = pt.allocTablePage(level);
  if (pfn === null) return null;
  env.vmstat.pgtableAlloc++;
  yield delayEffect(env.cost.zeroPage, 'clear_page (page table)');
  return pfn;
}

/**
 * The common shape of `__p4d_alloc()` and `__pud_alloc()` in mm/memory.c: allocate a table first (it may
 * sleep), then take `mm->page_table_lock` and install it only if the parent entry is still empty; a CPU
 * that lost the race frees its table. Returns false when out of memory.
 */
function* allocUnderPageTableLock(
  env: FaultEnv,
  mm: MmStruct,
  pt: PageTables,
  parentp: number,
  level: TableLevel,
  present: (e: bigint) => boolean,
): Kernel<boolean> {
  const pfn = yield* allocTable(env, pt, level);
  if (pfn === null) return false;
  yield* mm.pageTableLock.lock();
  const cur = yield* pt.readEntryK(parentp, 'populate check');
  const install = !present(cur);
  if (install) yield* pt.writeEntryK(parentp, BigInt(pfn * 4096) | _PAGE_TABLE, 'populate');
  yield* mm.pageTableLock.unlock();
  if (!install) yield* pt.freeTablePage(pfn, level);
  return true;
}

/**
 * Models `p4d_alloc()` / `__p4d_alloc()` in include/linux/mm.h and mm/memory.c: with 4-level paging the
 * p4d is folded into the pgd and this returns the pgd pointer. Returns null when out of memory.
 */
export function* p4dAllocFault(
  env: FaultEnv,
  mm: MmStruct,
  pt: PageTables,
  pgdp: number,
  addr: number,
): Kernel<number | null> {
  if (!pt.la57) return pgdp;
  const e = yield* pt.pgdpGet(pgdp);
  if (pgdNone(e) && !(yield* allocUnderPageTableLock(env, mm, pt, pgdp, 4, p4dPresent))) return null;
  return yield* pt.p4dOffset(pgdp, addr);
}

/** Models `pud_alloc()` / `__pud_alloc()`: the PUD pointer for `addr`, or null when out of memory. */
export function* pudAllocFault(
  env: FaultEnv,
  mm: MmStruct,
  pt: PageTables,
  p4dp: number,
  addr: number,
): Kernel<number | null> {
  const e = yield* pt.p4dpGet(p4dp);
  if (pudNone(e) && !(yield* allocUnderPageTableLock(env, mm, pt, p4dp, 3, p4dPresent))) return null;
  return yield* pt.pudOffset(p4dp, addr);
}

/**
 * Models `pmd_alloc()` / `__pmd_alloc()`: the page directory is installed under `pud_lock()`, which on
 * x86-64 is `mm->page_table_lock`. Returns the PMD pointer or null when out of memory.
 */
export function* pmdAllocFault(
  env: FaultEnv,
  mm: MmStruct,
  pt: PageTables,
  pudp: number,
  addr: number,
): Kernel<number | null> {
  const e = yield* pt.pudpGet(pudp);
  if (pudNone(e) && !(yield* allocUnderPageTableLock(env, mm, pt, pudp, 2, pudPresent))) return null;
  return yield* pt.pmdOffset(pudp, addr);
}

/**
 * Models `pte_alloc()` / `__pte_alloc()` and `pmd_install()` in mm/memory.c: if the PMD is empty, allocate
 * a PTE table, then install it under the split PMD lock (`pmd_lock()`) only if the PMD is still empty.
 * Returns false when out of memory (the caller returns VM_FAULT_OOM).
 */
export function* pteAllocFault(env: FaultEnv, pt: PageTables, pmdp: number): Kernel<boolean> {
  const e = yield* pt.pmdpGet(pmdp);
  if (!pmdNone(e)) return true;
  const pfn = yield* allocTable(env, pt, 1);
  if (pfn === null) return false;
  const ptl = pmdLockptr(pt, pmdp);
  yield* ptl.lock();
  const cur = yield* pt.pmdpGet(pmdp);
  const install = pmdNone(cur);
  if (install) yield* pt.writeEntryK(pmdp, BigInt(pfn * 4096) | _PAGE_TABLE, 'pmd_populate');
  yield* ptl.unlock();
  if (!install) yield* pt.freeTablePage(pfn, 1);
  return true;
}
