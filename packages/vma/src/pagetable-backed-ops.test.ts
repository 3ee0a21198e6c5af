import { Rcu } from '@spf/locks';
import { cpuRelax, Machine, runSync } from '@spf/machine';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_NX,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_TABLE,
  _PAGE_USER,
  ACCESS_USER,
  ACCESS_WRITE,
  Mmu,
  mkPte,
  PAGE_READONLY,
  type Page,
  PhysicalMemory,
  pteMkspecial,
  pteMkwrite,
  pteSpecial,
  pteWrite,
} from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { pteAllocMap } from './memory/page-table-alloc.js';
import { ptlockPtr } from './memory/pte-lock.js';
import { sysMunmap } from './munmap.js';
import { makeMemoryEnv } from './memory/memory-env.js';
import { MM_ANONPAGES, MmStruct } from './mm-struct.js';
import { MmuGather } from './page-table-ops.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { forkSync, madviseSync, mmapSync, mprotectSync, mremapSync, munmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import type { VmArea } from './vm-area.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const PMD = 0x200000; // what one PTE table maps
const PUD = 0x40000000; // what one page directory maps
/** 16 TiB: the start of a 512 GiB region (one PGD entry) nothing else uses. */
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const UW = ACCESS_USER | ACCESS_WRITE;

function sys(opts: { mmu?: boolean; cpus?: number; rcu?: Rcu; pgtableFreeRcu?: boolean } = {}) {
  const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
  const mmu = opts.mmu === false ? undefined : new Mmu(mem, { cpus: opts.cpus ?? 1 });
  const mm = new MmStruct({
    pageTables: PagetableOps.factory(mmu ? { mem, mmu } : { mem }),
    rcu: opts.rcu,
    pgtableFreeRcu: opts.pgtableFreeRcu,
  });
  const ops = mm.pageTables as PagetableOps;
  if (mmu) mmu.switchMm(0, mm.pgd);
  return { mem, mmu: mmu as Mmu, mm, ops, base: mem.freeCount };
}

function map(mm: MmStruct, addr: number, pages: number, prot = RW, flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  expect(mmapSync(mm, { addr, len: pages * P, prot, flags: flags | MAP_FIXED })).toEqual({
    ok: true,
    value: addr,
  });
  return mm.vmaLookup(addr) as VmArea;
}

const present = (ops: PagetableOps, start = 0, end = 2 ** 47) =>
  [...ops.presentPtes(start, end)].map((p) => p.addr);
const pteOf = (mm: MmStruct, addr: number) => mm.pgd.lookup(addr).at(-1);
/** How many levels of tables exist for `addr` (1: only the PGD entry is read, 4: down to a PTE). */
const depth = (mm: MmStruct, addr: number) => mm.pgd.lookup(addr).length;

describe('PagetableOps: construction', () => {
  it('takes an environment or builds one from the memory, the MMU and the PCID', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024, zeroPage: false });
    const env = makeMemoryEnv({ mem });
    const mmu = new Mmu(mem, { cpus: 1 });
    const a = new MmStruct({ pageTables: PagetableOps.factory({ env, mmu, pcid: 5 }) })
      .pageTables as PagetableOps;
    expect(a).toBeInstanceOf(PagetableOps);
    expect(a.env).toBe(env);
    expect(a.mmu).toBe(mmu);
    expect(a.pgd.pcid).toBe(5);
    const b = new MmStruct({ pageTables: PagetableOps.factory({ mem }) }).pageTables as PagetableOps;
    expect(b.env.mem).toBe(mem);
    expect(b.mmu).toBeNull();
    expect(b.pgd.pcid).toBe(0);
    expect(b.pgd.mem).toBe(mem);
  });

  it("fork's factory gives the child the same environment and MMU", () => {
    const { mm, ops, mmu } = sys();
    const child = new MmStruct({ pageTables: ops.forkFactory() });
    const cops = child.pageTables as PagetableOps;
    expect(cops.env).toBe(ops.env);
    expect(cops.mmu).toBe(mmu);
    expect(cops.pgd).not.toBe(mm.pgd);
  });
});

describe('zapRange (zap_pte_range)', () => {
  it('clears the present PTEs of the range, drops their mapcounts and RSS, and frees the pages after the flush', () => {
    const { mm, ops, mem } = sys();
    const vma = map(mm, A, 4);
    touch(mm, A, 3 * P);
    const pages = [...ops.presentPtes(A, A + 4 * P)].map((p) => p.page as Page);
    const tlb = new MmuGather();
    const free0 = mem.freeCount;
    expect(runSync(ops.zapRange(tlb, vma, A + P, A + 4 * P))).toBe(2);
    expect(tlb.needFlush).toBe(true);
    expect(present(ops)).toEqual([A]);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(pages.map((p) => p.mapcount)).toEqual([1, 0, 0]);
    // The references go only after the TLB flush.
    expect(mem.freeCount).toBe(free0);
    runSync(ops.tlbFinishMmu(tlb, A + P, A + 4 * P));
    expect(mem.freeCount).toBe(free0 + 2);
  });

  it('zaps across PTE tables and page directories', () => {
    const { mm, ops } = sys();
    const B = A + PUD - PMD - P; // one page before a PMD boundary, one PTE table before a PUD boundary
    const vma = map(mm, B, PMD / P + 2);
    touch(mm, B, 2 * P);
    touch(mm, A + PUD - P, 2 * P);
    expect(present(ops)).toEqual([B, B + P, A + PUD - P, A + PUD]);
    const tlb = new MmuGather();
    expect(runSync(ops.zapRange(tlb, vma, B, B + PMD + 2 * P))).toBe(4);
    expect(present(ops)).toEqual([]);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    runSync(ops.tlbFinishMmu(tlb, B, B + PMD + 2 * P));
  });

  it('clears a PTE that is not present without counting it or asking for a flush', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 2);
    touch(mm, A + P);
    const swapLike = 0x1234n << 12n; // not present, not none
    const step = pteOf(mm, A);
    expect(step?.level).toBe(1);
    mm.pgd.writeEntry(step?.entryPa as number, swapLike);
    const tlb = new MmuGather();
    expect(runSync(ops.zapRange(tlb, vma, A, A + P))).toBe(0);
    expect(tlb.needFlush).toBe(false);
    expect(mm.pgd.readEntry(step?.entryPa as number)).toBe(0n);
    expect(present(ops)).toEqual([A + P]);
  });

  it('reads each table entry once and touches no PTE that is none', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 4);
    touch(mm, A + 2 * P);
    let n = -1;
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'zap', function* () {
      const tlb = new MmuGather();
      n = yield* ops.zapRange(tlb, vma, A, A + 4 * P);
      yield* ops.tlbFinishMmu(tlb, A, A + 4 * P);
    });
    const res = m.run();
    expect(res.failure).toBeNull();
    expect(n).toBe(1);
    const labels = (res.trace ?? []).map((e) => e.label);
    // ptep_get_and_clear() (an xchg, a store) only on the present PTE; the walk's reads are labelled.
    expect(labels.filter((l) => l === 'ptep_get_and_clear')).toHaveLength(1);
    expect(labels.filter((l) => l === 'walk')).toHaveLength(3);
  });

  it('skips a huge (1 GiB) PUD entry instead of walking it as a page directory', () => {
    const { mm, ops, mem } = sys();
    const vma = map(mm, A, 1);
    touch(mm, A);
    // A leaf PUD whose frame, read as a page directory, would link a PTE table mapping a page.
    const R = A + 7 * PUD;
    const fake = mem.allocFrames(0);
    const table = mem.allocFrames(0);
    const page = mem.allocPages(0);
    page.mapcount = 1;
    const pte = mkPte(page, PAGE_READONLY);
    mem.write64(fake * P, BigInt(table * P) | _PAGE_TABLE);
    mem.write64(table * P, pte);
    const pud = mm.pgd.lookup(R)[1];
    expect(pud.level).toBe(3);
    mm.pgd.writeEntry(pud.entryPa, BigInt(fake * P) | _PAGE_PRESENT | _PAGE_PSE | _PAGE_USER);
    const tlb = new MmuGather();
    expect(runSync(ops.zapRange(tlb, vma, R, R + P))).toBe(0);
    expect(mem.read64(table * P)).toBe(pte);
    expect(page.mapcount).toBe(1);
    mm.pgd.writeEntry(pud.entryPa, 0n);
  });

  it('a special PTE (no struct page) is zapped and copied without touching a page or RSS', () => {
    const { mm, ops, mem } = sys();
    const vma = map(mm, A, 2);
    touch(mm, A + P);
    const page = mem.allocPages(0);
    const special = pteMkspecial(mkPte(page, PAGE_READONLY));
    const ptep = pteOf(mm, A)?.entryPa as number;
    mm.pgd.writeEntry(ptep, special);
    const child = new MmStruct({ pageTables: ops.forkFactory() });
    runSync((child.pageTables as PagetableOps).copyPageRange(vma, vma));
    const copied = (pteOf(child, A) as { entry: bigint }).entry;
    expect(pteSpecial(copied)).toBe(true);
    expect(child.rss[MM_ANONPAGES]).toBe(1);
    const tlb = new MmuGather();
    expect(runSync(ops.zapRange(tlb, vma, A, A + 2 * P))).toBe(2);
    runSync(ops.tlbFinishMmu(tlb, A, A + 2 * P));
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect([page.refcount, page.mapcount]).toEqual([1, 0]);
  });

  it('an empty range clears nothing and needs no flush', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 2);
    const tlb = new MmuGather();
    expect(runSync(ops.zapRange(tlb, vma, A, A + 2 * P))).toBe(0);
    touch(mm, A);
    expect(runSync(ops.zapRange(tlb, vma, A + P, A + 2 * P))).toBe(0);
    expect(tlb.needFlush).toBe(false);
  });
});

describe('changeProtection (change_pte_range)', () => {
  it('write-protects present PTEs and shoots the writable translation down', () => {
    const { mm, ops, mmu } = sys();
    map(mm, A, 3);
    touch(mm, A, 2 * P);
    expect(mmu.access(0, A, UW)).toBeGreaterThan(0);
    expect(mprotectSync(mm, A, 3 * P, PROT_READ).ok).toBe(true);
    const ptes = [...ops.presentPtes(A, A + 3 * P)];
    // The untouched page stays none.
    expect(ptes.map((p) => [p.addr, p.writable])).toEqual([
      [A, false],
      [A + P, false],
    ]);
    expect(mmu.access(0, A, UW)).toBe(-1);
    expect(mmu.access(0, A, ACCESS_USER)).toBeGreaterThan(0);
  });

  it('a special PTE (no struct page) in a private writable mapping stays read-only when write is given back', () => {
    const { mm, ops, mem } = sys();
    map(mm, A, 2);
    touch(mm, A + P);
    const page = mem.allocPages(0);
    mm.pgd.writeEntry(pteOf(mm, A)?.entryPa as number, pteMkspecial(mkPte(page, PAGE_READONLY)));
    expect(mprotectSync(mm, A, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A, 2 * P, RW).ok).toBe(true);
    expect([...ops.presentPtes(A, A + 2 * P)].map((p) => [p.addr, p.writable])).toEqual([
      [A, false],
      [A + P, true],
    ]);
  });

  it('changes only the PTEs of the range', () => {
    const { mm, ops } = sys();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    expect(mprotectSync(mm, A, P, PROT_READ).ok).toBe(true);
    expect([...ops.presentPtes(A, A + 2 * P)].map((p) => p.writable)).toEqual([false, true]);
  });

  it('makes an exclusive anonymous page writable at once, a shared one (after fork) not', () => {
    const { mm, ops } = sys();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A, 2 * P, RW).ok).toBe(true);
    expect([...ops.presentPtes(A, A + 2 * P)].map((p) => p.writable)).toEqual([true, true]);
    const child = forkSync(mm, ops.forkFactory());
    expect(mprotectSync(mm, A, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A, 2 * P, RW).ok).toBe(true);
    expect([...ops.presentPtes(A, A + 2 * P)].map((p) => p.writable)).toEqual([false, false]);
    expect(child.mapCount).toBe(1);
  });

  it('a PTE change the TLB need not see sends no shootdown', () => {
    const { mm, mmu, ops } = sys();
    map(mm, A, 1);
    touch(mm, A);
    // After fork the PTE is read-only already: mprotect(PROT_READ) rewrites it with the same bits.
    forkSync(mm, ops.forkFactory());
    expect(mmu.access(0, A, ACCESS_USER)).toBeGreaterThan(0);
    const cached = mmu.cpu(0).tlb.size();
    expect(cached).toBeGreaterThan(0);
    expect(mprotectSync(mm, A, P, PROT_READ).ok).toBe(true);
    expect(mmu.cpu(0).tlb.size()).toBe(cached);
    expect(mmu.access(0, A, ACCESS_USER)).toBeGreaterThan(0);
    // Taking the read right away (PROT_NONE) does need one.
    expect(mprotectSync(mm, A, P, 0).ok).toBe(true);
    expect(mmu.cpu(0).tlb.size()).toBeLessThan(cached);
  });
});

describe('copyPageRange (copy_pte_range for fork)', () => {
  it('copies present PTEs write-protected in both mms, old, with a reference and a mapcount per page', () => {
    const { mm, ops } = sys();
    map(mm, A, 3);
    touch(mm, A, 2 * P);
    const child = forkSync(mm, ops.forkFactory());
    const cops = child.pageTables as PagetableOps;
    const parent = [...ops.presentPtes(A, A + 3 * P)];
    const copied = [...cops.presentPtes(A, A + 3 * P)];
    expect(copied.map((p) => p.addr)).toEqual([A, A + P]);
    expect(copied.map((p) => p.page)).toEqual(parent.map((p) => p.page));
    expect(parent.map((p) => p.writable)).toEqual([false, false]);
    expect(copied.map((p) => p.writable)).toEqual([false, false]);
    expect(copied.map((p) => (p.pte & _PAGE_ACCESSED) === 0n)).toEqual([true, true]);
    // Dirty stays on a private copy (it is the same anonymous page).
    expect(copied.map((p) => (p.pte & _PAGE_DIRTY) !== 0n)).toEqual([true, true]);
    expect(parent.map((p) => [p.page?.refcount, p.page?.mapcount])).toEqual([
      [2, 2],
      [2, 2],
    ]);
    // Only the two present PTEs were counted (nothing for the none one).
    expect(child.rss).toEqual([0, 2, 0, 0]);
    expect(mm.rss).toEqual([0, 2, 0, 0]);
  });

  it('a shared mapping keeps its PTEs writable in both and cleans the child copy', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 1, RW, MAP_SHARED | MAP_ANONYMOUS);
    // A shared page as a fault would map it: writable and dirty.
    const page = mm.pgd.mem.allocPages(0);
    page.mapcount = 1;
    const ptep = runSync(pteAllocMap(ops.env, mm, A));
    mm.pgd.writeEntry(ptep, pteMkwrite(mkPte(page, vma.vmPageProt)) | _PAGE_DIRTY | _PAGE_ACCESSED);
    const child = new MmStruct({ pageTables: ops.forkFactory() });
    runSync((child.pageTables as PagetableOps).copyPageRange(vma, vma));
    const parentPte = mm.pgd.readEntry(ptep);
    const childPte = (pteOf(child, A) as { entry: bigint }).entry;
    expect(pteWrite(parentPte)).toBe(true);
    expect(pteWrite(childPte)).toBe(true);
    expect(parentPte & _PAGE_DIRTY).toBe(_PAGE_DIRTY);
    expect(childPte & (_PAGE_DIRTY | _PAGE_ACCESSED)).toBe(0n);
    expect([page.refcount, page.mapcount]).toEqual([2, 2]);
  });

  it('copies a table whose first PTEs are none', () => {
    const { mm, ops } = sys();
    map(mm, A, 2);
    touch(mm, A + P);
    const child = forkSync(mm, ops.forkFactory());
    expect(present(child.pageTables as PagetableOps)).toEqual([A + P]);
  });

  it('allocates no child table for a source table with nothing present in the VMA', () => {
    const { mm, ops } = sys();
    const v1 = map(mm, A, 1);
    map(mm, A + P, 1, PROT_READ); // a separate VMA right after it, in the same PTE table
    touch(mm, A + P);
    const child = new MmStruct({ pageTables: ops.forkFactory() });
    const cops = child.pageTables as PagetableOps;
    runSync(cops.copyPageRange(v1, v1));
    expect(depth(child, A)).toBe(1);
    // With something present, the table is made.
    touch(mm, A);
    runSync(cops.copyPageRange(v1, v1));
    expect(present(cops)).toEqual([A]);
  });

  it('refuses to copy an mm onto itself', () => {
    const { mm, ops } = sys();
    const v = map(mm, A, 1);
    touch(mm, A);
    expect(() => runSync(ops.copyPageRange(v, v))).toThrow(
      'copy_page_range: source and destination are the same mm',
    );
  });
});

describe('movePageTables (move_ptes for mremap)', () => {
  it('moves the PTEs extent by extent across PTE tables on both sides, and flushes the old translations', () => {
    const { mm, ops, mmu } = sys();
    const SRC = A + PMD - P;
    const DST = A + PUD + PMD - 2 * P;
    map(mm, SRC, 3);
    touch(mm, SRC, 3 * P);
    const pages = [...ops.presentPtes(SRC, SRC + 3 * P)].map((p) => p.page);
    expect(mmu.access(0, SRC, UW)).toBeGreaterThan(0);
    expect(mremapSync(mm, SRC, 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, DST)).toEqual({
      ok: true,
      value: DST,
    });
    expect(present(ops)).toEqual([DST, DST + P, DST + 2 * P]);
    expect([...ops.presentPtes(DST, DST + 3 * P)].map((p) => p.page)).toEqual(pages);
    expect(mmu.access(0, SRC, UW)).toBe(-1);
    expect(mm.rss[MM_ANONPAGES]).toBe(3);
    expect(munmapSync(mm, DST, 3 * P).ok).toBe(true);
    expect(present(ops)).toEqual([]);
  });

  it('moves nothing past the end of the range on its last extent', () => {
    const { mm, ops } = sys();
    const SRC = A + PMD - P;
    map(mm, SRC, 2);
    map(mm, SRC + 2 * P, 1, PROT_READ); // the next page, in the same PTE table as the last extent
    touch(mm, SRC, 3 * P);
    const DST = A + 8 * PMD;
    expect(mremapSync(mm, SRC, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, DST).ok).toBe(true);
    expect(present(ops)).toEqual([SRC + 2 * P, DST, DST + P]);
  });

  it('moves inside one PTE table (one lock, not nested)', () => {
    const { mm, ops } = sys();
    map(mm, A + 16 * P, 2);
    touch(mm, A + 16 * P, 2 * P);
    map(mm, A + 18 * P, 1, PROT_READ); // a neighbour right after the moved range, in the same table
    touch(mm, A + 18 * P);
    expect(mremapSync(mm, A + 16 * P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 64 * P).ok).toBe(true);
    expect(present(ops)).toEqual([A + 18 * P, A + 64 * P, A + 65 * P]);
    // Every PTE lock was released: the table can be zapped again.
    expect(munmapSync(mm, A, 128 * P).ok).toBe(true);
    expect(present(ops)).toEqual([]);
  });

  it('holds the new PTE table lock (nested) while it fills a different table', () => {
    const { mm, ops, mem } = sys();
    const SRC = A;
    const DST = A + 4 * PMD;
    const vma = map(mm, SRC, 1);
    touch(mm, SRC);
    map(mm, DST + P, 1); // makes the new table exist
    touch(mm, DST + P);
    const nptl = ptlockPtr(mem, Math.floor((pteOf(mm, DST)?.entryPa as number) / P));
    const log: string[] = [];
    let held = false;
    const m = new Machine({ cpus: 2 });
    m.spawn(1, 'rmap walker', function* () {
      yield* nptl.lock();
      held = true;
      for (let i = 0; i < 200 && log.length === 0; i++) yield* cpuRelax('walk the table');
      log.push('walker out');
      yield* nptl.unlock();
    });
    m.spawn(0, 'mremap', function* () {
      while (!held) yield* cpuRelax('wait for the walker');
      const tlb = new MmuGather();
      expect(yield* ops.movePageTables(tlb, vma, SRC, vma, DST, P)).toBe(P);
      log.push('moved');
      yield* ops.tlbFinishMmu(tlb, SRC, SRC + P);
    });
    expect(m.run().failure).toBeNull();
    expect(log).toEqual(['walker out', 'moved']);
    expect(present(ops)).toEqual([DST, DST + P]);
  });

  it('skips an extent with no old page table, and a range with no tables at all', () => {
    const { mm, ops } = sys();
    const SRC = A + 2 * PMD - P;
    map(mm, SRC, 2);
    touch(mm, SRC + P); // only the second page, in the next PTE table
    // The first page's new PTE table would be another one than the second's.
    const DST = A + 9 * PMD - P;
    expect(mremapSync(mm, SRC, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, DST).ok).toBe(true);
    expect(present(ops)).toEqual([DST + P]);
    // No PTE table was allocated for the extent that had none.
    expect(depth(mm, DST)).toBe(3);
    // Nothing below the PGD entry of this region, then nothing below its page directory.
    const far = A + 2 ** 39 * 2;
    map(mm, far, 1);
    expect(mremapSync(mm, far, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, far + 16 * P).ok).toBe(true);
    const near = A + 3 * PUD;
    map(mm, near, 1);
    expect(mremapSync(mm, near, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, near + 16 * P).ok).toBe(true);
    expect(present(ops)).toEqual([DST + P]);
  });

  it('touches no old PTE that is none', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 4);
    touch(mm, A + 2 * P);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'move', function* () {
      const tlb = new MmuGather();
      expect(yield* ops.movePageTables(tlb, vma, A, vma, A + 2 * PMD, 4 * P)).toBe(4 * P);
      yield* ops.tlbFinishMmu(tlb, A, A + 4 * P);
    });
    const res = m.run();
    expect(res.failure).toBeNull();
    expect((res.trace ?? []).filter((e) => e.label === 'ptep_get_and_clear')).toHaveLength(1);
    expect(present(ops)).toEqual([A + 2 * PMD + 2 * P]);
  });

  it('returns how much it moved, and asks for a flush only when a present PTE moved', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 4);
    touch(mm, A + 2 * P);
    const step = pteOf(mm, A + 2 * P);
    const tlb = new MmuGather();
    expect(runSync(ops.movePageTables(tlb, vma, A, vma, A + 2 * PMD, P))).toBe(P);
    expect(tlb.needFlush).toBe(false);
    mm.pgd.writeEntry(step?.entryPa as number, 0x1234n << 12n); // not present, not none
    expect(runSync(ops.movePageTables(tlb, vma, A + 2 * P, vma, A + 2 * PMD, P))).toBe(P);
    expect(tlb.needFlush).toBe(false);
    expect(mm.pgd.readEntry(pteOf(mm, A + 2 * PMD)?.entryPa as number)).toBe(0x1234n << 12n);
    touch(mm, A + 3 * P);
    expect(runSync(ops.movePageTables(tlb, vma, A + 3 * P, vma, A + 2 * PMD + P, P))).toBe(P);
    expect(tlb.needFlush).toBe(true);
    runSync(ops.tlbFinishMmu(tlb, A, A + 4 * P));
  });

  it('stops at the first extent whose new page table cannot be allocated', () => {
    const { mm, ops, mem } = sys();
    const SRC = A + PMD - P;
    const vma = map(mm, SRC, 2);
    touch(mm, SRC, 2 * P);
    const taken: number[] = [];
    while (mem.freeCount > 0) taken.push(mem.allocFrames(0));
    const tlb = new MmuGather();
    // The new range is in a region whose page directory exists: only PTE tables are needed.
    expect(runSync(ops.movePageTables(tlb, vma, SRC, vma, A + 8 * PMD, 2 * P))).toBe(0);
    // Nor a page directory for a new range in another gigabyte.
    expect(runSync(ops.movePageTables(tlb, vma, SRC, vma, A + 5 * PUD, 2 * P))).toBe(0);
    mem.freeFrames(taken.pop() as number);
    expect(runSync(ops.movePageTables(tlb, vma, SRC, vma, A + 8 * PMD - P, 2 * P))).toBe(P);
    runSync(ops.tlbFinishMmu(tlb, SRC, SRC + 2 * P));
    expect(present(ops)).toEqual([SRC + P, A + 8 * PMD - P]);
    for (const pfn of taken) mem.freeFrames(pfn);
  });
});

describe('freePgtables (free_pgd_range) through munmap', () => {
  it('frees every table that served only the unmapped range, after the flush', () => {
    const { mm, mem, base } = sys();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    // A PUD table, a page directory, a PTE table and two pages.
    expect(mem.freeCount).toBe(base - 5);
    expect(munmapSync(mm, A, 2 * P).ok).toBe(true);
    expect(mem.freeCount).toBe(base);
    expect(depth(mm, A)).toBe(1);
  });

  it('clears the PMD, PUD and P4D entries that linked them and counts the freed tables per level', () => {
    const { mm } = sys();
    const tables0 = [...mm.pgd.tables];
    map(mm, A, 1);
    touch(mm, A);
    expect(mm.pgd.tables.slice(1, 4)).toEqual([tables0[1] + 1, tables0[2] + 1, tables0[3] + 1]);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'munmap', () => sysMunmap(mm, A, P));
    const res = m.run();
    expect(res.failure).toBeNull();
    expect(mm.pgd.tables).toEqual(tables0);
    const clears = (res.trace ?? []).map((e) => e.label).filter((l) => /^p[a-z0-9]+_clear$/.test(l));
    expect(clears).toEqual(['pmd_clear', 'pud_clear', 'p4d_clear']);
    // Each level's entries are read with a labelled effect.
    expect((res.trace ?? []).filter((e) => e.label === 'free_pgd_range')).toHaveLength(3);
  });

  it('freeing a table asks for a flush even when no PTE was cleared (paging-structure caches)', () => {
    const { mm, ops } = sys();
    map(mm, A, 1);
    touch(mm, A);
    expect(madviseSync(mm, A, P, MADV_DONTNEED).ok).toBe(true);
    expect(depth(mm, A)).toBe(4);
    const tlb = new MmuGather();
    runSync(ops.freePgtables(tlb, 0, A, A + P, 0));
    expect(tlb.needFlush).toBe(true);
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    expect(depth(mm, A)).toBe(1);
  });

  it('keeps a PTE table another VMA still uses', () => {
    const { mm, ops, mem, base } = sys();
    map(mm, A, 1);
    map(mm, A + 2 * P, 1, PROT_READ);
    touch(mm, A);
    touch(mm, A + 2 * P);
    expect(munmapSync(mm, A, P).ok).toBe(true);
    expect(present(ops)).toEqual([A + 2 * P]);
    expect(mem.freeCount).toBe(base - 4);
  });

  it('frees a PTE table that spans exactly from the previous VMA to the next one', () => {
    const { mm, ops, mem } = sys();
    const X = A + 2 * PMD;
    map(mm, X - P, 1);
    map(mm, X, 1, PROT_READ);
    map(mm, X + PMD, 1);
    touch(mm, X - P);
    touch(mm, X);
    touch(mm, X + PMD);
    const free0 = mem.freeCount;
    expect(munmapSync(mm, X, P).ok).toBe(true);
    // The page and its PTE table; the page directory stays (its neighbours use it).
    expect(mem.freeCount).toBe(free0 + 2);
    expect(depth(mm, X)).toBe(3);
    expect(present(ops)).toEqual([X - P, X + PMD]);
  });

  it('frees a page directory once its last PTE table goes, but not one still used', () => {
    const { mm, mem } = sys();
    map(mm, A, 1);
    map(mm, A + PUD, 1);
    touch(mm, A);
    touch(mm, A + PUD);
    const free0 = mem.freeCount;
    expect(munmapSync(mm, A + PUD, P).ok).toBe(true);
    // Page, PTE table, page directory; the PUD table stays for A.
    expect(mem.freeCount).toBe(free0 + 3);
    expect(depth(mm, A + PUD)).toBe(2);
    expect(depth(mm, A)).toBe(4);
  });

  it('unlinks the tables at once but frees them only at tlb_finish_mmu()', () => {
    const { mm, ops, mem } = sys();
    const vma = map(mm, A, 1);
    touch(mm, A);
    const tlb = new MmuGather();
    runSync(ops.zapRange(tlb, vma, A, A + P));
    const free0 = mem.freeCount;
    runSync(ops.freePgtables(tlb, 0, A, A + P, 0));
    expect(depth(mm, A)).toBe(1);
    expect(tlb.needFlush).toBe(true);
    expect(mem.freeCount).toBe(free0);
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    expect(mem.freeCount).toBe(free0 + 4);
  });

  it('with pgtableFreeRcu, the table pages wait for a grace period after the flush', () => {
    const rcu = new Rcu(1);
    const { mm, mem, base } = sys({ rcu, pgtableFreeRcu: true });
    map(mm, A, 1);
    touch(mm, A);
    expect(munmapSync(mm, A, P).ok).toBe(true);
    expect(mem.freeCount).toBe(base - 3);
    runSync(rcu.synchronize());
    expect(mem.freeCount).toBe(base);
  });

  it('keeps a page directory that still links another PTE table (no caller bug)', () => {
    const { mm, ops } = sys();
    const vma = map(mm, A, 1);
    map(mm, A + PMD, 1);
    touch(mm, A);
    touch(mm, A + PMD);
    const tlb = new MmuGather();
    runSync(ops.zapRange(tlb, vma, A, A + P));
    runSync(ops.freePgtables(tlb, 0, A, A + P, 0));
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    expect(depth(mm, A)).toBe(3);
    expect(present(ops)).toEqual([A + PMD]);
  });

  it('frees only the tables of [start, end), even with floor and ceiling far away', () => {
    const { mm, ops } = sys();
    // Three PTE tables in a row; the outer two are empty (MADV_DONTNEED keeps the tables).
    map(mm, A, (3 * PMD) / P);
    touch(mm, A);
    touch(mm, A + PMD);
    touch(mm, A + 2 * PMD);
    expect(madviseSync(mm, A, 3 * PMD, MADV_DONTNEED).ok).toBe(true);
    const tlb = new MmuGather();
    runSync(ops.freePgtables(tlb, 0, A + PMD, A + 2 * PMD, 0));
    runSync(ops.tlbFinishMmu(tlb, A, A + 3 * PMD));
    expect([depth(mm, A), depth(mm, A + PMD), depth(mm, A + 2 * PMD)]).toEqual([4, 3, 4]);
  });

  it('leaves a huge PMD alone', () => {
    const { mm, ops, mem } = sys();
    map(mm, A, 1);
    touch(mm, A);
    const frame = mem.allocFrames(0); // all zeros: it would look like an empty page table
    const pmd = mm.pgd.lookup(A + PMD)[2];
    expect(pmd.level).toBe(2);
    const huge = BigInt(frame * P) | _PAGE_PRESENT | _PAGE_PSE | _PAGE_USER;
    mm.pgd.writeEntry(pmd.entryPa, huge);
    const tlb = new MmuGather();
    runSync(ops.freePgtables(tlb, A + PMD, A + PMD, A + PMD + P, A + 2 * PMD));
    expect(tlb.needFlush).toBe(false);
    runSync(ops.tlbFinishMmu(tlb, A + PMD, A + PMD + P));
    expect(mm.pgd.readEntry(pmd.entryPa)).toBe(huge);
    mm.pgd.writeEntry(pmd.entryPa, 0n);
  });

  it('leaves a huge (1 GiB) PUD alone', () => {
    const { mm, ops, mem } = sys();
    map(mm, A, 1);
    touch(mm, A);
    const R = A + 7 * PUD;
    const frame = mem.allocFrames(0); // all zeros: it would look like an empty page directory
    const pud = mm.pgd.lookup(R)[1];
    expect(pud.level).toBe(3);
    const huge = BigInt(frame * P) | _PAGE_PRESENT | _PAGE_PSE | _PAGE_USER;
    mm.pgd.writeEntry(pud.entryPa, huge);
    const tlb = new MmuGather();
    runSync(ops.freePgtables(tlb, R, R, R + P, R + PUD));
    expect(tlb.needFlush).toBe(false);
    runSync(ops.tlbFinishMmu(tlb, R, R + P));
    expect(mm.pgd.readEntry(pud.entryPa)).toBe(huge);
    mm.pgd.writeEntry(pud.entryPa, 0n);
  });

  it('a PTE table that still maps pages is a bug of the caller', () => {
    const { mm, ops } = sys();
    map(mm, A, 1);
    touch(mm, A);
    const tlb = new MmuGather();
    expect(() => runSync(ops.freePgtables(tlb, 0, A, A + P, 0))).toThrow(
      /free_pgtables: page table at 0x[0-9a-f]+ still maps pages/,
    );
  });

  it('a floor or ceiling inside a table keeps it', () => {
    const { mm, ops, mem } = sys();
    const vma = map(mm, A + PMD, 1);
    touch(mm, A + PMD);
    const tlb = new MmuGather();
    runSync(ops.zapRange(tlb, vma, A + PMD, A + PMD + P));
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    const free0 = mem.freeCount;
    runSync(ops.freePgtables(tlb, A + PMD + 1, A + PMD, A + PMD + P, 0));
    runSync(ops.freePgtables(tlb, 0, A + PMD, A + PMD + P, A + 2 * PMD - 1));
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    expect(mem.freeCount).toBe(free0);
    expect(depth(mm, A + PMD)).toBe(4);
    runSync(ops.freePgtables(tlb, A + PMD, A + PMD, A + PMD + P, A + 2 * PMD));
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    expect(mem.freeCount).toBe(free0 + 1);
  });
});

describe('TLB flushes', () => {
  /** Caches translations of A and A+P on CPU 0, then clears both PTEs behind the TLB's back. */
  function stale() {
    const s = sys();
    map(s.mm, A, 2);
    touch(s.mm, A, 2 * P);
    expect(s.mmu.access(0, A, UW)).toBeGreaterThan(0);
    expect(s.mmu.access(0, A + P, UW)).toBeGreaterThan(0);
    for (const a of [A, A + P]) s.mm.pgd.writeEntry(pteOf(s.mm, a)?.entryPa as number, 0n);
    return s;
  }

  it('flush_tlb_page() drops one page, flush_tlb_mm() all of them', () => {
    const s = stale();
    runSync(s.ops.flushTlbPage(A));
    expect(s.mmu.access(0, A, UW)).toBe(-1);
    expect(s.mmu.access(0, A + P, UW)).toBeGreaterThan(0);
    runSync(s.ops.flushTlbMm());
    expect(s.mmu.access(0, A + P, UW)).toBe(-1);
  });

  it('tlb_finish_mmu() flushes its range only when the gather asked for it, then resets and releases', () => {
    const s = stale();
    const tlb = new MmuGather();
    let released = 0;
    tlb.defer(function* () {
      released++;
    });
    runSync(s.ops.tlbFinishMmu(tlb, A, A + 2 * P));
    expect(released).toBe(1);
    expect(s.mmu.access(0, A, UW)).toBeGreaterThan(0);
    tlb.needFlush = true;
    runSync(s.ops.tlbFinishMmu(tlb, A, A + 2 * P));
    expect(tlb.needFlush).toBe(false);
    expect(s.mmu.access(0, A, UW)).toBe(-1);
    expect(s.mmu.access(0, A + P, UW)).toBe(-1);
    expect(released).toBe(1);
  });

  it('without an MMU the flushes do nothing and the gather is still released', () => {
    const { ops } = sys({ mmu: false });
    const tlb = new MmuGather();
    let released = 0;
    tlb.defer(function* () {
      released++;
    });
    tlb.needFlush = true;
    runSync(ops.tlbFinishMmu(tlb, A, A + P));
    runSync(ops.flushTlbMm());
    runSync(ops.flushTlbPage(A));
    expect(released).toBe(1);
    expect(tlb.needFlush).toBe(false);
  });
});

describe('presentPtes and destroy', () => {
  it('lists each present PTE with its rights, page and RSS type', () => {
    const { mm, ops } = sys();
    map(mm, A, 2);
    map(mm, A + PUD, 1, PROT_READ);
    touch(mm, A + P);
    touch(mm, A + PUD);
    const ptes = [...ops.presentPtes(0, 2 ** 64)];
    expect(ptes.map((p) => [p.addr, p.writable, p.user, p.executable, p.rssType])).toEqual([
      [A + P, true, true, false, MM_ANONPAGES],
      [A + PUD, false, true, false, MM_ANONPAGES],
    ]);
    expect(ptes[0].pte).toBe(mm.pgd.readEntry(pteOf(mm, A + P)?.entryPa as number));
    expect(ptes[0].page).not.toBeNull();
    expect([...ops.presentPtes(A + 2 * P, A + PUD)]).toEqual([]);
    expect([...ops.presentPtes(A + PUD, A + PUD + P)].map((p) => p.addr)).toEqual([A + PUD]);
    // A PTE outside every VMA has no page to show.
    const step = pteOf(mm, A + P);
    const pte = mm.pgd.readEntry(step?.entryPa as number);
    mm.pgd.writeEntry((step?.entryPa as number) + 8, pte);
    const stray = [...ops.presentPtes(A + 2 * P, A + 3 * P)];
    expect(stray.map((p) => [p.addr, p.page, p.rssType])).toEqual([[A + 2 * P, null, -1]]);
    // A kernel (non-user) executable PTE.
    mm.pgd.writeEntry((step?.entryPa as number) + 8, pte & ~_PAGE_USER & ~_PAGE_NX);
    const k = [...ops.presentPtes(A + 2 * P, A + 3 * P)];
    expect(k.map((p) => [p.user, p.executable])).toEqual([[false, true]]);
    mm.pgd.writeEntry((step?.entryPa as number) + 8, 0n);
    // A huge PMD is a leaf, not a table to walk.
    const frame = mm.pgd.mem.allocFrames(0);
    mm.pgd.mem.write64(frame * P, pte);
    const pmdStep = mm.pgd.lookup(A + 8 * PMD)[2];
    expect(pmdStep.level).toBe(2);
    mm.pgd.writeEntry(pmdStep.entryPa, BigInt(frame * P) | _PAGE_PRESENT | _PAGE_PSE | _PAGE_USER);
    expect([...ops.presentPtes(A + 8 * PMD, A + 9 * PMD)]).toEqual([]);
    mm.pgd.writeEntry(pmdStep.entryPa, 0n);
  });

  it('destroy() drops the address space from the CPUs that have it loaded, then frees every table', () => {
    const { mm, ops, mmu, mem, base } = sys({ cpus: 2 });
    const other = new MmStruct({ pageTables: ops.forkFactory() });
    map(other, A, 1);
    touch(other, A);
    mmu.switchMm(1, other.pgd);
    expect(mmu.access(1, A, UW)).toBeGreaterThan(0);
    map(mm, A, 1);
    touch(mm, A);
    expect(mmu.access(0, A, UW)).toBeGreaterThan(0);
    expect(madviseSync(mm, A, P, MADV_DONTNEED).ok).toBe(true);
    expect(mmu.access(0, A, ACCESS_USER)).toBe(-1);
    const free0 = mem.freeCount;
    const before1 = mmu.cpu(1).tlb.size();
    expect(before1).toBeGreaterThan(0);
    ops.destroy();
    expect(mmu.cpu(0).mm).toBeNull();
    expect(mmu.cpu(0).tlb.size()).toBe(0);
    expect(mmu.cpu(1).mm).toBe(other.pgd);
    expect(mmu.cpu(1).tlb.size()).toBe(before1);
    // The PGD, the PUD table, the page directory and the PTE table.
    expect(mem.freeCount).toBe(free0 + 4);
    expect(mem.freedBy(mm.pgd.pgd / P)).toBe('exit_mmap of mm#0');
    expect(base).toBeGreaterThan(0);
  });

  it('destroy() without an MMU only frees the tables', () => {
    const { ops, mem } = sys({ mmu: false });
    const free0 = mem.freeCount;
    ops.destroy();
    expect(mem.freeCount).toBe(free0 + 1);
  });
});
