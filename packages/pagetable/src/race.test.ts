import { Cell, exploreInTest, kassert, type Scenario } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER } from './entry-bits.js';
import { Mmu } from './mmu.js';
import { PageTables } from './page-tables.js';
import { PhysicalMemory } from './physical-memory.js';
import { flushTlbMmRange } from './shootdown.js';

const VA = 0x7f00_0000_5000;
const DATA = 0x40_0000;

describe('hardware A/D updates racing with the kernel (SDM 4.8, ptep_get_and_clear)', () => {
  const NAME = 'A/D update vs ptep_get_and_clear';
  const scenario: Scenario = {
    name: NAME,
    cpus: 2,
    setup(m) {
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
      const pt = new PageTables(mem);
      const ptep = pt.map(VA, DATA, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER });
      const mmu = new Mmu(mem, { cpus: 2 });
      mmu.switchMm(0, pt);
      const wrote = new Cell(false, 'wrote');
      const old = new Cell(0n, 'old');
      m.spawn(0, 'user-write', function* () {
        const r = yield* mmu.translateKernel(0, VA, { kind: 'write', user: true });
        yield* wrote.store(r.ok);
      });
      m.spawn(1, 'zap', function* () {
        yield* old.store(yield* pt.ptepGetAndClear(VA, ptep));
      });
      return () => {
        kassert(
          pt.readEntry(ptep) === 0n,
          `the walk resurrected a cleared PTE: 0x${pt.readEntry(ptep).toString(16)}`,
        );
        kassert(
          !wrote.value || (old.value & _PAGE_DIRTY) !== 0n,
          'a write succeeded but the dirty bit was lost: ptep_get_and_clear returned a clean entry',
        );
      };
    },
  };
  it('never loses the dirty bit of a successful write nor resurrects a cleared entry', () => {
    const res = exploreInTest(scenario, { policy: 'dfs', bound: 3 }, NAME);
    expect(res.failure).toBeNull();
    expect(res.runs).toBeGreaterThan(3);
  });
});

describe('a page walk is part of one instruction: a shootdown is taken before or after it, never inside', () => {
  const NAME = 'page walk vs free of its page table after a shootdown';
  const scenario: Scenario = {
    name: NAME,
    cpus: 2,
    // Shootdown IPIs arrive at once, so they can land between any two of the walk's entry reads.
    cost: { ipiSend: 0, ipiLatency: 0 },
    setup(m) {
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
      const pt = new PageTables(mem);
      pt.map(VA, DATA, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER });
      const mmu = new Mmu(mem, { cpus: 2 });
      mmu.switchMm(0, pt);
      const steps = pt.lookup(VA);
      const pmdp = steps[2].entryPa;
      const ptePfn = Math.floor(steps[3].entryPa / 4096);
      const result = new Cell<string>('none', 'result');
      m.spawn(0, 'user-read', function* () {
        const r = yield* mmu.translateKernel(0, VA, { kind: 'read', user: true });
        yield* result.store(r.ok ? `pa 0x${r.pa.toString(16)}` : r.fault);
      });
      // free_pgtables(): clear the PMD entry, shoot the range down, then free the PTE table.
      m.spawn(1, 'unmap', function* () {
        yield* pt.pmdClear(pmdp);
        yield* flushTlbMmRange(mmu, pt, VA, VA + 4096);
        yield* pt.freeTablePage(ptePfn, 1);
      });
      return () => {
        // Either the walk finished before the IPI was taken (and used the old table), or it ran after it.
        kassert(
          result.value === `pa 0x${(DATA + (VA % 4096)).toString(16)}` || result.value === 'PF',
          `unexpected walk result ${result.value}`,
        );
        // Whatever it found, the TLB holds no translation the completed shootdown removed.
        kassert(
          !mmu.translate(0, VA, { kind: 'read', user: true }).ok,
          'the TLB kept a translation that the shootdown removed',
        );
      };
    },
  };
  it('never reads a freed page table nor fills the TLB with a translation a completed shootdown removed', () => {
    const res = exploreInTest(scenario, { policy: 'dfs', bound: 3 }, NAME);
    expect(res.failure).toBeNull();
    expect(res.runs).toBeGreaterThan(3);
  });
});

describe('TLB with large pages (SDM 4.10.2)', () => {
  it('caches 2 MiB and 1 GiB translations and INVLPG of any address inside drops them', () => {
    const mem = new PhysicalMemory({ size: 64 * 1024 * 1024 });
    const pt = new PageTables(mem);
    const mmu = new Mmu(mem);
    mmu.switchMm(0, pt);
    pt.map(0x4000_0000, 0x20_0000, { size: 2097152 });
    pt.map(0x80_0000_0000, 0x4000_0000, { size: 1073741824 });
    const r = { kind: 'read', user: true } as const;
    expect(mmu.translate(0, 0x4000_1234, r)).toMatchObject({ ok: true, pa: 0x20_1234n, pageSize: 2097152 });
    expect(mmu.translate(0, 0x80_1234_5678, r)).toMatchObject({ ok: true, pageSize: 1073741824 });
    pt.unmap(0x4000_0000);
    pt.unmap(0x80_0000_0000);
    expect(mmu.translate(0, 0x401f_f000, r).ok).toBe(true); // same 2 MiB entry, stale
    expect(mmu.translate(0, 0x80_3fff_f000, r).ok).toBe(true);
    mmu.invlpg(0, 0x4010_0000);
    mmu.invlpg(0, 0x80_2000_0000);
    expect(mmu.translate(0, 0x4000_1234, r).ok).toBe(false);
    expect(mmu.translate(0, 0x80_1234_5678, r).ok).toBe(false);
    expect(mmu.cpu(0).tlb.size()).toBe(0);
  });
  it('PhysicalMemory can share the machine physical lines (lineOf option)', () => {
    const lines = new Map<number, string>();
    const mem = new PhysicalMemory({
      size: 16 * 1024 * 1024,
      lineOf: (pa) => {
        lines.set(pa, 'asked');
        return { label: `x${pa}` } as never;
      },
    });
    mem.lineOf(0x1234);
    expect(lines.has(0x1234)).toBe(true);
  });
});

describe('a page walk is part of one instruction: a context switch never splits it', () => {
  // The scheduler tick can preempt a user thread between two of its walk's entry reads, and the next task
  // on the CPU may load another CR3. On hardware the walk belongs to one instruction of the first thread,
  // so its result must never be cached for the address space that is current when the walk finishes.
  it('does not fill the TLB for the CR3 loaded while the walk was in flight', () => {
    const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
    const a = new PageTables(mem);
    const b = new PageTables(mem);
    a.map(VA, DATA, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER });
    b.map(VA, DATA + 0x1000, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER });
    const mmu = new Mmu(mem, { cpus: 1 });
    mmu.switchMm(0, a);
    const walk = mmu.translateKernel(0, VA, { kind: 'read', user: true });
    walk.next(); // the first entry read of A's walk
    mmu.switchMm(0, b); // another task runs and switches to B
    let step = walk.next();
    while (!step.done) step = walk.next();
    // A's walk still yields A's translation, for A's instruction...
    expect(step.value).toMatchObject({ ok: true, pa: BigInt(DATA) });
    // ...but B, now current, must translate VA through its own tables, not through A's cached result.
    const inB = mmu.translate(0, VA, { kind: 'read', user: true });
    expect(inB).toMatchObject({ ok: true, pa: BigInt(DATA + 0x1000) });
  });
});
