import { runSync } from '@spf/machine';
import { entryTablePa, PAGE_SIZE, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct } from '../mm-struct.js';
import { PagetableOps } from '../pagetable-backed-ops.js';
import { makeMemoryEnv } from './memory-env.js';
import { pmdAllocWalk, pteAlloc } from './page-table-alloc.js';
import { pmdLockptr, pteLockptr, pteOffsetMapLock, ptlockPtr } from './pte-lock.js';

const VA = 0x7f00_0020_3000;

function system() {
  const mem = new PhysicalMemory({ size: 4 * 1024 * 1024 });
  const env = makeMemoryEnv({ mem });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
  return { mem, env, mm };
}

describe('split page-table locks', () => {
  it('ptlock_ptr: one lock per table page, kept in the page, of class ptlock', () => {
    const { mem } = system();
    const a = mem.allocPages(0).pfn;
    const b = mem.allocPages(0).pfn;
    const la = ptlockPtr(mem, a);
    expect(ptlockPtr(mem, a)).toBe(la);
    expect(mem.page(a).ptl).toBe(la);
    expect(ptlockPtr(mem, b)).not.toBe(la);
    expect(la.lockClass).toBe('ptlock');
    expect(la.name).toBe(`ptl:0x${a.toString(16)}`);
  });

  it('pte_lockptr is the lock of the PTE table the PMD links; pmd_lockptr that of the table holding the PMD', () => {
    const { mm, env } = system();
    const pt = mm.pgd;
    const pmdp = runSync(pmdAllocWalk(env, mm, VA)) as number;
    expect(runSync(pteAlloc(env, mm, pmdp))).toBe(true);
    const pmdval = pt.readEntry(pmdp);
    const ptePfn = entryTablePa(pmdval) / PAGE_SIZE;
    expect(pteLockptr(pt, pmdval)).toBe(ptlockPtr(pt.mem, ptePfn));
    expect(pmdLockptr(pt, pmdp)).toBe(ptlockPtr(pt.mem, Math.floor(pmdp / PAGE_SIZE)));
    expect(pmdLockptr(pt, pmdp + 8)).toBe(pmdLockptr(pt, pmdp - (pmdp % PAGE_SIZE)));
    expect(pmdLockptr(pt, pmdp)).not.toBe(pteLockptr(pt, pmdval));
  });
});

describe('pte_offset_map_lock', () => {
  it('returns the PTE pointer with the PTE table lock held', () => {
    const { mm, env } = system();
    const pt = mm.pgd;
    const pmdp = runSync(pmdAllocWalk(env, mm, VA)) as number;
    runSync(pteAlloc(env, mm, pmdp));
    const locked = runSync(pteOffsetMapLock(pt, pmdp, VA));
    expect(locked).not.toBeNull();
    expect(locked?.ptep).toBe(runSync(pt.pteOffsetMap(pmdp, VA)));
    expect(locked?.ptl).toBe(pteLockptr(pt, pt.readEntry(pmdp)));
    expect(locked?.ptl.isLocked()).toBe(true);
    expect(pmdLockptr(pt, pmdp).isLocked()).toBe(false);
    if (locked) runSync(locked.ptl.unlock());
  });

  it('returns null, holding nothing, when the PMD links no PTE table', () => {
    const { mm, env } = system();
    const pmdp = runSync(pmdAllocWalk(env, mm, VA)) as number;
    expect(runSync(pteOffsetMapLock(mm.pgd, pmdp, VA))).toBeNull();
  });

  it('re-reads the PMD under the lock: a table replaced meanwhile is unlocked and the new one locked', () => {
    const { mm, env, mem } = system();
    const pt = mm.pgd;
    const pmdp = runSync(pmdAllocWalk(env, mm, VA)) as number;
    runSync(pteAlloc(env, mm, pmdp));
    const oldPmd = pt.readEntry(pmdp);
    const oldLock = pteLockptr(pt, oldPmd);
    const fresh = mem.allocPages(0).pfn;
    const newPmd = (oldPmd & ~BigInt(entryTablePa(oldPmd))) | BigInt(fresh * PAGE_SIZE);
    // Replace the PMD as another CPU would between the unlocked read and the lock: when the old lock is taken.
    const lock = oldLock.lock.bind(oldLock);
    let swapped = false;
    oldLock.lock = function* () {
      yield* lock();
      if (!swapped) {
        swapped = true;
        pt.writeEntry(pmdp, newPmd);
      }
    };
    const locked = runSync(pteOffsetMapLock(pt, pmdp, VA));
    expect(swapped).toBe(true);
    expect(locked?.ptl).toBe(ptlockPtr(mem, fresh));
    expect(locked?.ptl.isLocked()).toBe(true);
    expect(oldLock.isLocked()).toBe(false);
  });
});
