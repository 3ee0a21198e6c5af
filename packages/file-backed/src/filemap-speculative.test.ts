import {
  FAULT_FLAG_SPECULATIVE,
  type SpeculativeFileAbort,
  type SpeculativeFileHooks,
  VM_FAULT_LOCKED,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { putPage, trylockPage, unlockPage } from '@spf/pagetable';
import { MAP_PRIVATE, PROT_READ, type VmArea, type VmFault } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { fileTruncate } from './file-ops.js';
import { filemapFault } from './filemap.js';
import { makeFileFixture, must } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

/**
 * The speculative case of filemap_fault() (Lespinasse's 2021 RFC), called as a speculative design's
 * `do_fault()` calls it: only a cached, not PG_readahead, unlocked, uptodate page of the file below EOF comes
 * back (locked, VM_FAULT_LOCKED); anything else is VM_FAULT_RETRY with the reason the design counts, and no
 * I/O is started.
 */
function setup(pages = 8) {
  const fx = makeFileFixture();
  const f = fx.makeFile(1, pages);
  fx.mmapFile(A, pages, PROT_READ, MAP_PRIVATE, f);
  const vma = fx.mm.findVma(A) as VmArea;
  const aborts: SpeculativeFileAbort[] = [];
  const hooks: SpeculativeFileHooks = {
    *fileAccessBegin() {
      return true;
    },
    *fileAccessEnd() {},
    checks: { pageMappingRecheck: true },
    aborted: (r) => {
      aborts.push(r);
    },
  };
  const fault = (pgoff: number): { ret: number; vmf: VmFault } => {
    const vmf = {
      vma,
      address: A + pgoff * P,
      pgoff,
      flags: FAULT_FLAG_SPECULATIVE,
      env: fx.env,
      speculative: { pteMapLock: () => null, file: hooks },
    } as unknown as VmFault;
    return { ret: fx.run(filemapFault(vmf)), vmf };
  };
  return { fx, f, fault, aborts };
}

describe('speculative filemap_fault()', () => {
  it('returns a cached page locked, pays back one mmap_miss, and starts no I/O', () => {
    const { fx, f, fault, aborts } = setup();
    f.fRa.mmapMiss = 3;
    const reads = fx.sb.device.stats.reads;
    const { ret, vmf } = fault(2);
    expect(ret).toBe(VM_FAULT_LOCKED);
    expect(vmf.page).toBe(f.mapping.iPages.peek(2));
    expect(vmf.page?.test('locked')).toBe(true);
    expect(f.fRa.mmapMiss).toBe(2);
    expect(aborts).toEqual([]);
    expect(fx.sb.device.stats.reads).toBe(reads);
    fx.run(unlockPage(vmf.page as never));
    fx.run(putPage(vmf.page as never));
  });

  it('gives up on a miss, a PG_readahead page, a locked page and a page past EOF, without I/O or leaks', () => {
    const { fx, f, fault, aborts } = setup();
    fx.evict(f);
    const reads = fx.sb.device.stats.reads;
    expect(fault(0).ret).toBe(VM_FAULT_RETRY);
    expect(f.mapping.nrpages).toBe(0); // no readahead either
    expect(fx.sb.device.stats.reads).toBe(reads);
    const g = setup();
    const p3 = g.f.mapping.iPages.peek(3);
    const p4 = g.f.mapping.iPages.peek(4);
    if (p3 === null || p4 === null) throw new Error('pages 3 and 4 are cached');
    p3.set('readahead');
    expect(g.fault(3).ret).toBe(VM_FAULT_RETRY);
    expect(g.fx.run(trylockPage(p4))).toBe(true); // I/O or truncation in flight
    const refs = p4.refcount;
    expect(g.fault(4).ret).toBe(VM_FAULT_RETRY);
    expect(p4.refcount).toBe(refs);
    g.fx.run(unlockPage(p4));
    const p6 = g.f.mapping.iPages.peek(6);
    must(g.fx.run(fileTruncate(g.f, 6 * P))); // page 6 leaves the cache
    expect(g.f.mapping.iPages.peek(6)).toBeNull();
    expect(p6?.mapping).toBeNull();
    expect(g.fault(6).ret).toBe(VM_FAULT_RETRY);
    expect(aborts).toEqual(['pagecache-miss']);
    expect(g.aborts).toEqual(['readahead', 'page-locked', 'pagecache-miss']);
  });
});
