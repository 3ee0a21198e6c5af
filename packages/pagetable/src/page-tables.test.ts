import {
  AtomicCell,
  Cell,
  ExplorationFailure,
  explore,
  exploreInTest,
  kassert,
  localIrqDisable,
  localIrqEnable,
  replaySchedule,
  runSync,
  type Scenario,
  sendIpi,
} from '@spf/machine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CPU_FEATURE_NAMES, type CpuFeatures } from './cpu-features.js';
import { dumpPageTables } from './dump.js';
import {
  _PAGE_ACCESSED,
  _PAGE_NX,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_TABLE,
  _PAGE_USER,
  type Level,
  PAGE_SHARED,
} from './entry-bits.js';
import {
  MappingConflictError,
  MisalignedAddressError,
  NonCanonicalAddressError,
  OutOfMemoryError,
  PhysicalAddressError,
} from './errors.js';
import { ACCESS_USER, ACCESS_WRITE, Mmu } from './mmu.js';
import { PG } from './page.js';
import { entryTablePa, PageTables, tableIndex } from './page-tables.js';
import { PhysicalMemory } from './physical-memory.js';
import {
  mkPte,
  pfnPte,
  pteMkclean,
  pteMkdirty,
  pteMkexec,
  pteMkold,
  pteMkspecial,
  pteMkwrite,
  pteMkyoung,
  pteNone,
  ptePfn,
  pteWrprotect,
} from './pte.js';
import { flushTlbMmRange, flushTlbRangeLocal, pteNeedsFlush } from './shootdown.js';
import { makeWorld, runWalk, WALKS } from './test-support/world.js';
import type { PageSize, WalkAccess } from './walker.js';

const MiB = 1024 * 1024;
const VA = 0x7f00_0020_3000;
const DATA = 0x40_0000;

/**
 * Maps `va` to `pfn` through the kernel entry API: the missing tables come from `allocTablePage()` and are
 * linked with `writeEntryK()` (the kernel's `__pte_alloc()` and friends, with their locks, live in @spf/vma).
 */
function* kernelMap(pt: PageTables, va: number, pfn: number, prot: bigint) {
  let table = pt.pgd;
  for (let level = pt.levels; level > 1; level--) {
    const p = table + tableIndex(va, level as Level) * 8;
    let e = yield* pt.readEntryK(p);
    if (pteNone(e)) {
      const child = pt.allocTablePage((level - 1) as Level);
      if (child === null) return false;
      e = BigInt(child * 4096) | _PAGE_TABLE;
      yield* pt.writeEntryK(p, e);
    }
    table = entryTablePa(e);
  }
  const ptep = table + tableIndex(va, 1) * 8;
  yield* pt.setPteAt(va, ptep, mkPte({ pfn }, prot));
  return true;
}

/** Walks to the PTE pointer of `va` through the kernel API, without allocating (a lockless walk). */
function* kernelPtep(pt: PageTables, va: number) {
  const pgdp = pt.pgdOffset(va);
  const p4dp = yield* pt.p4dOffset(pgdp, va);
  const pudp = yield* pt.pudOffset(p4dp, va);
  const pmdp = yield* pt.pmdOffset(pudp, va);
  const ptep = yield* pt.pteOffsetMap(pmdp, va);
  return { pmdp, ptep };
}

describe('kernel page-table API (include/linux/pgtable.h)', () => {
  for (const la57 of [false, true]) {
    it(`allocates tables on the way down and maps a page (${la57 ? '5' : '4'}-level)`, () => {
      const mem = new PhysicalMemory({ size: 16 * MiB });
      const pt = new PageTables(mem, { la57 });
      const page = mem.allocPages(0);
      expect(runSync(kernelMap(pt, VA, page.pfn, PAGE_SHARED))).toBe(true);
      expect(pt.translate(VA + 5)).toBe(page.pa + 5);
      expect(pt.tables.slice(1, pt.levels)).toEqual(la57 ? [1, 1, 1, 1] : [1, 1, 1]);
      const leaf = pt.leaf(VA)!;
      const { ptep } = runSync(kernelPtep(pt, VA));
      expect(ptep).toBe(leaf.entryPa);
      expect(mem.page(Math.floor(leaf.entryPa / 4096)).test('table')).toBe(true);
      const mmu = new Mmu(mem);
      mmu.switchMm(0, pt);
      expect(mmu.access(0, VA + 8, ACCESS_USER | ACCESS_WRITE)).toBe(page.pa + 8);
    });
  }
  it('pte_offset_map returns null for a none or huge PMD', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pt = new PageTables(mem);
    expect(runSync(kernelPtep(pt, VA)).ptep).toBeNull();
    pt.map(0x4000_0000, 0x20_0000, { size: 2097152 });
    expect(runSync(kernelPtep(pt, 0x4000_0000)).ptep).toBeNull();
  });
  it('ptep_get_and_clear, ptep_set_wrprotect, test_and_clear_young, set_access_flags', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pt = new PageTables(mem);
    const p = pt.map(VA, DATA, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED });
    runSync(pt.ptepSetWrprotect(VA, p));
    expect(pt.readEntry(p) & _PAGE_RW).toBe(0n);
    expect(runSync(pt.ptepTestAndClearYoung(VA, p))).toBe(true);
    expect(runSync(pt.ptepTestAndClearYoung(VA, p))).toBe(false);
    const want = pt.readEntry(p) | _PAGE_RW | _PAGE_ACCESSED;
    expect(runSync(pt.ptepSetAccessFlags(VA, p, want, true))).toBe(true);
    expect(pt.readEntry(p)).toBe(want);
    expect(runSync(pt.ptepSetAccessFlags(VA, p, want, true))).toBe(false);
    expect(runSync(pt.ptepGetAndClear(VA, p))).toBe(want);
    expect(pt.readEntry(p)).toBe(0n);
  });
});

describe('a lockless walker racing with the freeing of a page table', () => {
  const NAME = 'lockless walker vs free_pte_range';
  const race = (gupFastProtocol: boolean): Scenario => ({
    name: NAME,
    cpus: 2,
    setup(m) {
      const mem = new PhysicalMemory({ size: 16 * MiB });
      const pt = new PageTables(mem);
      pt.map(VA, DATA);
      m.spawn(0, 'walker', function* () {
        // GUP-fast style: with interrupts off, the table cannot be freed under us (the freer waits for an IPI ack).
        if (gupFastProtocol) yield* localIrqDisable();
        const { ptep } = yield* kernelPtep(pt, VA);
        if (ptep !== null) yield* pt.ptepGet(ptep);
        pt.pteUnmap(ptep);
        if (gupFastProtocol) yield* localIrqEnable();
      });
      m.spawn(1, 'unmapper', function* () {
        const { pmdp, ptep } = yield* kernelPtep(pt, VA);
        if (ptep === null) return;
        yield* pt.ptepGetAndClear(VA, ptep);
        yield* pt.pmdClear(pmdp);
        if (gupFastProtocol) yield* sendIpi([0], function* () {}, true, 'tlb flush');
        yield* pt.pteFree(ptep - (ptep % 4096));
      });
    },
  });

  it('is reported as a use-after-free with a schedule that replays it', () => {
    let failure: ExplorationFailure | null = null;
    try {
      exploreInTest(race(false), { policy: 'random', runs: 500, seed: 7 }, NAME);
    } catch (e) {
      failure = e as ExplorationFailure;
    }
    expect(failure).toBeInstanceOf(ExplorationFailure);
    const msg = failure!.message;
    expect(msg).toMatch(/use-after-free/i);
    expect(msg).toMatch(/PT free by task 'unmapper' on CPU 1/);
    expect(msg).toMatch(/SPF_REPLAY='[^']+'/);
    const schedule = /SPF_REPLAY='([^']+)'/.exec(msg)![1];
    const replayed = replaySchedule(race(false), schedule);
    expect(replayed.failure?.kind).toBe('use-after-free');
    expect(replayed.failure?.task).toBe('walker');
  });
  it('does not happen when the walker runs with interrupts off and the freer waits for an IPI', () => {
    const res = exploreInTest(race(true), { policy: 'dfs', bound: 3 }, `${NAME} (irqs off)`);
    expect(res.failure).toBeNull();
    expect(explore(race(true), { policy: 'random', runs: 300 }).failure).toBeNull();
  });
  it('the hardware walk (kernel form) racing with the free is also caught', () => {
    const scenario: Scenario = {
      cpus: 2,
      setup(m) {
        const mem = new PhysicalMemory({ size: 16 * MiB });
        const pt = new PageTables(mem);
        pt.map(VA, DATA);
        const mmu = new Mmu(mem, { cpus: 2 });
        mmu.switchMm(0, pt);
        m.spawn(0, 'cpu-access', function* () {
          yield* mmu.translateKernel(0, VA, { kind: 'read', user: true });
        });
        m.spawn(1, 'unmapper', function* () {
          const { pmdp, ptep } = yield* kernelPtep(pt, VA);
          yield* pt.pmdClear(pmdp);
          yield* pt.pteFree(ptep! - (ptep! % 4096));
        });
      },
    };
    const res = explore(scenario, { policy: 'random', runs: 500, seed: 3 });
    expect(res.failure?.kind).toBe('use-after-free');
    expect(res.failure?.message).toMatch(/page walk|read/);
  });
});

describe('pte_needs_flush: which PTE rewrites leave a stale TLB entry', () => {
  const ro = pteMkyoung(pfnPte(0x1234, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED));
  const rw = pteMkdirty(pteMkwrite(ro));
  it('a non-present old entry was never cached', () => {
    expect(pteNeedsFlush(0n, rw)).toBe(false);
    expect(pteNeedsFlush(pfnPte(0x1234, _PAGE_USER), rw)).toBe(false);
  });
  it('removing or granting write, clearing dirty or present, a new frame or exec change: flush', () => {
    expect(pteNeedsFlush(rw, pteWrprotect(rw))).toBe(true); // mprotect(PROT_READ)
    expect(pteNeedsFlush(ro, pteMkwrite(ro))).toBe(true); // RW is a flush-on-change bit on x86
    expect(pteNeedsFlush(rw, pteMkclean(rw))).toBe(true);
    expect(pteNeedsFlush(rw, 0n)).toBe(true);
    expect(pteNeedsFlush(rw, pfnPte(0x4321, rw & 0xfffn))).toBe(true);
    expect(pteNeedsFlush(ro | _PAGE_NX, pteMkexec(ro | _PAGE_NX))).toBe(true);
  });
  it('setting dirty, clearing accessed or changing software bits: no flush', () => {
    expect(pteNeedsFlush(ro, pteMkdirty(ro))).toBe(false);
    expect(pteNeedsFlush(ro, pteMkold(ro))).toBe(false);
    expect(pteNeedsFlush(ro, pteMkspecial(ro))).toBe(false);
    expect(pteNeedsFlush(ro, ro)).toBe(false);
  });
});

describe('TLB shootdown (flush_tlb_mm_range)', () => {
  const NAME = 'shootdown';
  const scenario = (withShootdown: boolean): Scenario => ({
    name: NAME,
    cpus: 3,
    setup(m) {
      const mem = new PhysicalMemory({ size: 16 * MiB });
      const pt = new PageTables(mem);
      const mmu = new Mmu(mem, { cpus: 3 });
      const ptep = pt.map(VA, DATA);
      const done = new AtomicCell(0, 'flush-done');
      for (let cpu = 0; cpu < 3; cpu++) {
        mmu.switchMm(cpu, pt);
        mmu.access(cpu, VA, ACCESS_USER); // warm every TLB
      }
      m.spawn(0, 'munmap', function* () {
        yield* pt.ptepGetAndClear(VA, ptep);
        if (withShootdown) yield* flushTlbMmRange(mmu, pt, VA, VA + 4096);
        else flushTlbRangeLocal(mmu, 0, pt, VA, VA + 4096);
        yield* done.store(1);
      });
      for (let cpu = 1; cpu < 3; cpu++) {
        const seen = new Cell(0, `seen${cpu}`);
        m.spawn(cpu, `user${cpu}`, function* () {
          for (let i = 0; i < 4; i++) {
            const flushed = yield* done.load();
            const r = yield* mmu.translateKernel(cpu, VA, { kind: 'read', user: true });
            kassert(
              !(flushed && r.ok),
              `CPU ${cpu} still reaches the unmapped page after the flush returned`,
            );
            yield* seen.store(i);
          }
        });
      }
    },
  });
  it('after flush_tlb_mm_range returns, no CPU translates the address', () => {
    const res = exploreInTest(scenario(true), { policy: 'random', runs: 300 }, NAME);
    expect(res.failure).toBeNull();
  });
  it('a missing remote flush is visible: the explorer finds a CPU using the stale entry', () => {
    const res = explore(scenario(false), { policy: 'random', runs: 300 });
    expect(res.failure?.kind).toBe('assertion');
    expect(res.failure?.message).toMatch(/still reaches the unmapped page/);
  });
});

describe('synchronous map/unmap and bad input', () => {
  it('rejects bad input with typed errors and leaves the tables unchanged', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pt = new PageTables(mem);
    pt.map(VA, DATA);
    pt.map(0x4000_0000, 0x20_0000, { size: 2097152 });
    const before = dumpPageTables(pt);
    const free = mem.freeCount;
    expect(() => pt.map(0x8000_0000_0000n, DATA)).toThrow(NonCanonicalAddressError);
    expect(() => pt.map(VA + 1, DATA)).toThrow(MisalignedAddressError);
    expect(() => pt.map(0x6000_0000, 0x1000, { size: 2097152 })).toThrow(MisalignedAddressError);
    expect(() => pt.map(VA + 0x1000, 2 ** 46)).toThrow(PhysicalAddressError);
    expect(() => pt.map(VA, DATA)).toThrow(MappingConflictError);
    expect(() => pt.map(0x4000_1000, DATA)).toThrow(MappingConflictError);
    expect(() => pt.map(-4096, DATA)).toThrow(NonCanonicalAddressError);
    expect(() => pt.map(VA - (VA % 2097152), 0, { size: 2097152, replace: true })).toThrow(
      /page table is linked|PT is linked/,
    );
    expect(dumpPageTables(pt)).toBe(before);
    expect(mem.freeCount).toBe(free);
  });
  it('running out of memory while mapping leaves the tables unchanged', () => {
    const mem = new PhysicalMemory({ size: 8 * 4096 });
    const pt = new PageTables(mem);
    while (mem.freeCount > 2) mem.allocFrames(0);
    const before = dumpPageTables(pt);
    expect(() => pt.map(VA, DATA)).toThrow(OutOfMemoryError); // needs 3 tables
    expect(dumpPageTables(pt)).toBe(before);
    expect(mem.freeCount).toBe(2);
  });
  it('destroy frees every table page', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const free0 = mem.freeCount;
    const pt = new PageTables(mem);
    pt.map(VA, DATA);
    pt.map(0x1000, DATA);
    pt.destroy();
    expect(mem.freeCount).toBe(free0);
  });
  it('property: random layouts map, translate and unmap as expected (round trip)', () => {
    const sizes: PageSize[] = [4096, 2097152, 1073741824];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            slot: fc.integer({ min: 0, max: 255 }),
            size: fc.constantFrom(...sizes),
            frame: fc.integer({ min: 1, max: 1000 }),
            off: fc.integer({ min: 0, max: 4095 }),
          }),
          { maxLength: 12 },
        ),
        fc.boolean(),
        (ops, la57) => {
          const mem = new PhysicalMemory({ size: 16 * MiB });
          const pt = new PageTables(mem, { la57 });
          const mmu = new Mmu(mem);
          mmu.switchMm(0, pt);
          const mapped = new Map<number, { pa: number; size: number }>();
          for (const op of ops) {
            // Spread slots over the address space: slot picks a GiB-aligned region, size picks the page.
            const va =
              op.slot * 2 ** 39 + (op.size === 4096 ? 0x20_3000 : op.size === 2097152 ? 0x60_0000 : 0);
            const pa = op.frame * op.size;
            try {
              pt.map(va, pa, { size: op.size });
              mapped.set(va, { pa, size: op.size });
            } catch (e) {
              expect(e).toBeInstanceOf(MappingConflictError);
            }
          }
          for (const [va, { pa, size }] of mapped) {
            const off = Math.min(size - 1, 4095 * 7);
            expect(pt.translate(va + off)).toBe(pa + off);
            expect(mmu.access(0, va + off, ACCESS_USER)).toBe(pa + off);
          }
          for (const [va, { pa }] of mapped) {
            expect(ptePfn(pt.unmap(va))).toBe(pa / 4096);
            expect(pt.translate(va)).toBeNull();
            mmu.invlpg(0, va);
            expect(mmu.access(0, va, ACCESS_USER)).toBe(-1);
            expect(mmu.fault.errorCode & 1).toBe(0);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
  it('property: the kernel API and the MMU agree on what a mapping translates to', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 2 ** 35 - 1 }), { maxLength: 10 }),
        fc.boolean(),
        (vpns, la57) => {
          const mem = new PhysicalMemory({ size: 64 * MiB });
          const pt = new PageTables(mem, { la57 });
          const mmu = new Mmu(mem);
          mmu.switchMm(0, pt);
          const pages = vpns.map((vpn) => {
            const page = mem.allocPages(0);
            expect(runSync(kernelMap(pt, vpn * 4096, page.pfn, PAGE_SHARED))).toBe(true);
            return page;
          });
          vpns.forEach((vpn, i) => {
            expect(mmu.access(0, vpn * 4096 + 12, ACCESS_USER | ACCESS_WRITE)).toBe(pages[i].pa + 12);
            const { ptep } = runSync(kernelPtep(pt, vpn * 4096));
            expect(ptep).toBe(pt.leaf(vpn * 4096)!.entryPa);
            expect(ptePfn(runSync(pt.ptepGet(ptep!)))).toBe(pages[i].pfn);
          });
          expect(mem.flagWords[pt.pgd / 4096] & PG.table).toBe(PG.table);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('property: the fast walk, referenceWalk and the kernel-form walk agree', () => {
  const accesses: WalkAccess[] = [
    { kind: 'read', user: false },
    { kind: 'read', user: true },
    { kind: 'write', user: false },
    { kind: 'write', user: true },
    { kind: 'fetch', user: false },
    { kind: 'fetch', user: true },
    { kind: 'read', user: false, implicit: true },
  ];
  it('on random CPU features, layouts, entry bits, control registers and accesses (results and A/D state)', () => {
    // Low bits: P is set in 7 of 8 entries, so that most walks get past the upper levels.
    const entryBits = fc.record({
      low: fc
        .tuple(fc.bigInt({ min: 0n, max: 0xfffn }), fc.integer({ min: 0, max: 7 }))
        .map(([low, k]) => (k === 0 ? low & ~1n : low | 1n)),
      high: fc.constantFrom(0n, 0n, 1n << 63n, 1n << 47n, 5n << 59n, 1n << 13n, 1n << 51n),
    });
    // Every CPU feature on or off; the control bits that need a feature are set only when it is there
    // (setting one without it throws, as the MOV to CR4 would #GP).
    const featuresAndRegs = fc
      .record(
        Object.fromEntries(CPU_FEATURE_NAMES.map((n) => [n, fc.boolean()])) as Record<
          keyof CpuFeatures,
          fc.Arbitrary<boolean>
        >,
      )
      .chain((features) =>
        fc.record({
          features: fc.constant(features),
          regs: fc.record({
            la57: fc.boolean().map((b) => b && features.la57),
            maxPhyAddr: fc.constantFrom(40, 46, 52),
            wp: fc.boolean(),
            smep: fc.boolean().map((b) => b && features.smep),
            smap: fc.boolean().map((b) => b && features.smap),
            pke: fc.boolean().map((b) => b && features.pku),
            pks: fc.boolean().map((b) => b && features.pks),
            nxe: fc.boolean().map((b) => b && features.nx),
            ac: fc.boolean(),
            pkru: fc.integer({ min: 0, max: 0xffff }),
            pkrs: fc.integer({ min: 0, max: 0xffff }),
          }),
        }),
      );
    fc.assert(
      fc.property(
        featuresAndRegs,
        fc.constantFrom<PageSize>(4096, 2097152, 1073741824),
        fc.array(entryBits, { minLength: 5, maxLength: 5 }),
        fc.constantFrom(...accesses),
        fc.integer({ min: 0, max: 2 ** 20 }),
        ({ features, regs }, size, bits, access, off) => {
          const va = 0x12_3440_0000_0000 % (regs.la57 ? 2 ** 56 : 2 ** 47);
          const vaAligned = va - (va % size);
          const results = WALKS.map((kind) => {
            const w = makeWorld({ la57: regs.la57, maxPhyAddr: regs.maxPhyAddr, cpuFeatures: features });
            Object.assign(w.cpu, regs);
            w.pt.map(vaAligned, size, { size });
            // Overwrite each entry on the path with random bits (keeping its link).
            for (const [i, s] of w.pt.lookup(vaAligned).entries()) {
              const b = bits[i];
              w.pt.writeEntry(
                s.entryPa,
                (s.entry & ((1n << 40n) - 1n) & ~0xfffn) | b.low | b.high | (s.entry & 0x80n),
              );
            }
            let r: unknown;
            try {
              r = runWalk(kind, w, vaAligned + (off % size), access);
            } catch (e) {
              r = { threw: (e as Error).name };
            }
            return { r, tables: dumpPageTables(w.pt) };
          });
          expect(results[1].r, 'reference vs fast').toEqual(results[0].r);
          expect(results[2].r, 'kernel vs fast').toEqual(results[0].r);
          expect(results[1].tables).toBe(results[0].tables);
          expect(results[2].tables).toBe(results[0].tables);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('dump', () => {
  it('prints the tree for a range with levels, sizes and flags', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pt = new PageTables(mem);
    pt.map(0x1000, 0x12_3000);
    pt.map(0x4000_0000, 0x20_0000, { size: 2097152, flags: _PAGE_PRESENT | _PAGE_USER });
    const text = dumpPageTables(pt, 0, 0x8000_0000);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^PML4\[000\] 0x[0-9a-f]{16} -> table 0x[0-9a-f]+ \[P RW US A D\]$/);
    expect(text).toContain('      PT[001] 0x0000000000123007 va 0x1000 -> pa 0x123000 4K [P RW US]');
    expect(text).toContain('    PD[000] ');
    expect(text).toMatch(/ {4}PD\[000\] 0x0000000000200085 va 0x40000000 -> pa 0x200000 2M \[P US PS\]/);
    expect(dumpPageTables(pt, 0x4000_0000, 0x4020_0000)).not.toContain('va 0x1000');
  });
  it('names kernel-half addresses in canonical form', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pt = new PageTables(mem);
    pt.map(0xffff_8880_0000_0000n, 0x1000, { flags: _PAGE_PRESENT | _PAGE_RW });
    expect(dumpPageTables(pt)).toContain('va 0xffff888000000000 -> pa 0x1000 4K');
  });
});

describe('makeWorld helper', () => {
  it('runs each walk kind', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA);
    for (const k of WALKS) expect(runWalk(k, w, VA, { kind: 'read', user: true }).ok).toBe(true);
  });
});
