import { type Kernel, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { type MmPageTableOps, MmuGather, NoPageTables } from './page-table-ops.js';
import { mmapSync, mremapSync, munmapSync } from './sync-api.js';
import type { VmArea } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;

describe('MmuGather', () => {
  it('starts with nothing to flush and nothing to free', () => {
    const tlb = new MmuGather();
    expect(tlb.needFlush).toBe(false);
    runSync(tlb.release());
  });

  it('frees what was deferred in order, once, and only at release', () => {
    const tlb = new MmuGather();
    const log: string[] = [];
    const free = (what: string) =>
      function* (): Kernel<void> {
        log.push(what);
      };
    tlb.defer(free('page'));
    tlb.defer(free('pte table'));
    expect(log).toEqual([]);
    runSync(tlb.release());
    expect(log).toEqual(['page', 'pte table']);
    runSync(tlb.release());
    expect(log).toEqual(['page', 'pte table']);
    tlb.defer(free('pmd table'));
    runSync(tlb.release());
    expect(log).toEqual(['page', 'pte table', 'pmd table']);
  });
});

describe('NoPageTables (an mm that is never faulted in)', () => {
  const mm = new MmStruct();
  const vma = null as unknown as VmArea;
  it('is what an mm without a page-table factory gets, and has no pgd', () => {
    expect(mm.pageTables).toBeInstanceOf(NoPageTables);
    expect(mm.pageTables.pgd).toBeNull();
    expect(() => mm.pgd).toThrow();
  });
  it('changes nothing, moves everything asked, and frees what a gather holds at tlb_finish_mmu', () => {
    const pt: MmPageTableOps = new NoPageTables();
    const tlb = new MmuGather();
    expect(runSync(pt.zapRange(tlb, vma, 0, P))).toBe(0);
    expect(runSync(pt.movePageTables(tlb, vma, A, vma, A + 8 * P, 3 * P))).toBe(3 * P);
    runSync(pt.changeProtection(tlb, vma, 0, P, 0n));
    runSync(pt.copyPageRange(vma, vma));
    runSync(pt.freePgtables(tlb, 0, 0, P, P));
    runSync(pt.flushTlbMm());
    runSync(pt.flushTlbPage(A));
    pt.destroy();
    expect([...pt.presentPtes(0, 2 ** 47)]).toEqual([]);
    expect(pt.forkFactory).toBeUndefined();
    let freed = 0;
    tlb.defer(function* () {
      freed++;
    });
    runSync(pt.tlbFinishMmu(tlb, 0, P));
    expect(freed).toBe(1);
    expect(tlb.needFlush).toBe(false);
  });
  it('lets the VMA layer map, move and unmap without page tables', () => {
    const m = new MmStruct();
    const r = mmapSync(m, {
      addr: A,
      len: 4 * P,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    expect(r).toEqual({ ok: true, value: A });
    const moved = mremapSync(m, A, 4 * P, 8 * P, MREMAP_MAYMOVE);
    expect(moved.ok).toBe(true);
    expect(munmapSync(m, moved.ok ? moved.value : 0, 8 * P)).toEqual({ ok: true, value: 0 });
    expect(m.mapCount).toBe(0);
  });
});
