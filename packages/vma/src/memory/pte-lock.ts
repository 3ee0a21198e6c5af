import { SpinLock } from '@spf/locks';
import type { Kernel } from '@spf/machine';
import { entryTablePa, PAGE_SIZE, type PageTables, type PhysicalMemory } from '@spf/pagetable';

/**
 * Models `ptlock_ptr()` in include/linux/mm.h (split page-table locks): each page-table page carries its
 * own spinlock in `ptdesc->ptl`, so faults and syscalls on different 2 MiB regions do not contend. The lock
 * lives in the table page's `Page.ptl` slot and is created the first time anyone asks for it (Linux
 * initialises it in `pagetable_pte_ctor()`; creating it lazily is invisible to the simulation because the
 * table page is new either way). A freed and reallocated table page gets a fresh `Page` and so a fresh lock.
 */
export function ptlockPtr(mem: PhysicalMemory, tablePfn: number): SpinLock {
  const page = mem.page(tablePfn);
  if (page.ptl instanceof SpinLock) return page.ptl;
  const lock = new SpinLock(`ptl:0x${tablePfn.toString(16)}`, { lockClass: 'ptlock' });
  page.ptl = lock;
  return lock;
}

/** Models `pte_lockptr(mm, pmd)` in include/linux/mm.h: the lock of the PTE table that PMD value `pmdval` links. */
export function pteLockptr(pt: PageTables, pmdval: bigint): SpinLock {
  return ptlockPtr(pt.mem, entryTablePa(pmdval) / PAGE_SIZE);
}

/**
 * Models `pmd_lockptr(mm, pmd)` with split PMD locks (x86-64 `ARCH_ENABLE_SPLIT_PMD_PTLOCK`): the lock of
 * the page-directory page that holds the PMD entry at `pmdp`.
 */
export function pmdLockptr(pt: PageTables, pmdp: number): SpinLock {
  return ptlockPtr(pt.mem, Math.floor(pmdp / PAGE_SIZE));
}

/** A mapped and locked PTE: the entry pointer and the lock that protects it. */
export interface LockedPte {
  readonly ptep: number;
  readonly ptl: SpinLock;
}

/**
 * Models `pte_offset_map_lock()` (mm/pgtable-generic.c `__pte_offset_map_lock()`): reads the PMD, takes the
 * lock of the PTE table it links, and re-reads the PMD under the lock; if it changed (the table was freed
 * or replaced meanwhile) it unlocks and tries again. Returns null when the PMD no longer links a PTE table.
 */
export function* pteOffsetMapLock(pt: PageTables, pmdp: number, addr: number): Kernel<LockedPte | null> {
  // The entry reads are PageTables' inline forms (pmdp_get(), pte_offset_map()): no generator frame each.
  for (;;) {
    yield pt.pmdpGetEffect(pmdp);
    const pmdval = pt.entry(pmdp);
    yield pt.pteOffsetMapEffect(pmdp);
    const ptep = pt.pteOffsetIn(pt.entry(pmdp), addr);
    if (ptep === null) return null;
    const ptl = pteLockptr(pt, pmdval);
    yield* ptl.lock();
    yield pt.pmdpGetEffect(pmdp);
    if (pt.entry(pmdp) === pmdval) return { ptep, ptl };
    yield* ptl.unlock();
  }
}
