import { runSync } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { mmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const A = 0x100000000000;

/** Frames in use after munmap, before and after an RCU grace period, with and without MMU_GATHER_RCU_TABLE_FREE. */
function framesAfterMunmap(pgtableFreeRcu: boolean): { beforeGp: number; afterGp: number; mapped: number } {
  const mem = new PhysicalMemory({ size: 1 << 22, zeroPage: false });
  const mm = new MmStruct({ pgtableFreeRcu, pageTables: PagetableOps.factory({ mem }) });
  mmapSync(mm, {
    addr: A,
    len: 4096,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  const base = mem.freeCount;
  touch(mm, A);
  const mapped = base - mem.freeCount; // the data page and the pud, pmd and pte tables
  runSync(sysMunmap(mm, A, 4096));
  const beforeGp = base - mem.freeCount;
  runSync(mm.rcu.synchronize());
  return { beforeGp, afterGp: base - mem.freeCount, mapped };
}

describe('page tables freed by RCU (MmConfig.pgtableFreeRcu)', () => {
  it('munmap frees the unlinked page tables only after a grace period', () => {
    const r = framesAfterMunmap(true);
    expect(r.mapped).toBe(4);
    expect(r.beforeGp).toBe(3); // the data page is freed at once; pud, pmd and pte tables wait for RCU
    expect(r.afterGp).toBe(0);
  });

  it('without it they are freed right after the shootdown, as before', () => {
    const r = framesAfterMunmap(false);
    expect(r.beforeGp).toBe(0);
    expect(r.afterGp).toBe(0);
  });
});
