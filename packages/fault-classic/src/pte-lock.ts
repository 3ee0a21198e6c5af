import type { Kernel } from '@spf/machine';
import { SpinLock } from '@spf/locks';
import { entryTablePa, type PageTables, type PhysicalMemory } from '@spf/pagetable';

/**
 * The split page-table locks (`ptlock_ptr()` in include/linux/mm.h): each page-table page carries its own
 * spinlock in `ptdesc->ptl`, so faults on different 2 MiB regions do not contend. The lock lives in the
 * table page's `Page.ptl` slot and is created the first time anyone asks for it (Linux initialises it
 * in `pagetable_pte_ctor()`; creating it lazily is invisible to the simulation because the table page is
 * new either way). A freed and reallocated table page gets a fresh `Page` object and so a fresh lock.
 */
export function ptlockPtr(mem: PhysicalMemory, tablePfn: number): SpinLock {
  const page = mem.page(tablePfn);
  if (page.ptl instanceof SpinLock) return page.ptl;
  const lock = new SpinLock(`ptl:0x${tablePfn.toString(16)}`, { lockClass: 'ptlock' });
  page.ptl = lock;
  return lock;
}

/** `pte_lockptr(mm, pmd)`: the lock of the PTE table that PMD entry value `pmdval` links. */
export function pteLockptr(pt: PageTables, pmdval: bigint): SpinLock {
  return ptlockPtr(pt.mem, entryTablePa(pmdval) / 4096);
}

/**
 * `pmd_lockptr(mm, pmd)` with split PMD locks (x86-64 `ARCH_ENABLE_SPLIT_PMD_PTLOCK`): the lock of the page
 * directory page that holds the PMD entry at `pmdp`.
 */
export function pmdLockptr(pt: PageTables, pmdp: number): SpinLock {
  return ptlockPtr(pt.mem, Math.floor(pmdp / 4096));
}

/** A mapped and locked PTE: the entry pointer and the lock that protects it. */
export interface LockedPte {
  readonly ptep: number;
  readonly ptl: SpinLock;
}

/**
 * Models `pte_offset_map_lock()` (mm/pgtable-generic.c `__pte_offset_map_lock()`): reads the PMD, takes the
 * lock of the PTE table it links, and re-reads the PMD under the lock; if it changed (the table was freed or
 * replaced meanwhile) it unlocks and tries again. Returns null when the PMD no longer links a PTE table.
 */
export function* pteOffsetMapLock(pt: PageTables, pmdp: number, addr: number): Kernel<LockedPte | null> {
  for (;;) {
    const pmdval = yield* pt.pmdpGet(pmdp);
    const ptep = yield* pt.pteOffsetMap(pmdp, addr);
    if (ptep === null) return null;
    const ptl = pteLockptr(pt, pmdval);
    yield* ptl.lock();
    const again = yield* pt.pmdpGet(pmdp);
    if (again === pmdval) return { ptep, ptl };
    yield* ptl.unlock();
  }
}
