import { Rcu, SpinLock } from '@spf/locks';
import { EffectKind, exploreInTest, type Kernel, kassert, runSync, type Scenario } from '@spf/machine';
import { OutOfMemoryError, PageTables, PhysicalMemory, pgdNone, pmdNone } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct, NoPageTablesError } from '../mm-struct.js';
import { PagetableOps } from '../pagetable-backed-ops.js';
import { makeMemoryEnv } from './memory-env.js';
import { addMmCounter } from './mm-counter.js';
import { p4dAlloc, pgtableAllocUnderPtl, pmdAllocWalk, pteAlloc, pteAllocMap } from './page-table-alloc.js';
import { pmdLockptr } from './pte-lock.js';

const MiB = 1024 * 1024;
const VA = 0x7f00_0020_3000;
const PAGE = 4096;

describe('page-table allocation with Linux locks (__pte_alloc, __pmd_alloc, ...)', () => {
  it('two CPUs racing to allocate the same tables install exactly one of each and leak nothing (explored)', () => {
    const name = 'two CPUs racing to allocate the same tables install exactly one of each';
    const scenario: Scenario = {
      name,
      cpus: 2,
      setup(m) {
        const mem = new PhysicalMemory({ size: 16 * MiB, lineOf: (pa) => m.physLine(pa) });
        const env = makeMemoryEnv({ mem });
        const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ env }) });
        const free0 = mem.freeCount;
        for (let cpu = 0; cpu < 2; cpu++) {
          m.spawn(cpu, `fault${cpu}`, function* () {
            yield* pteAllocMap(env, mm, VA);
          });
        }
        return () => {
          const steps = mm.pgd.lookup(VA);
          kassert(steps.length === 4 && steps[3].level === 1, 'no PTE table installed');
          // PDPT, PD and PT: one each, whoever won each race.
          kassert(
            mem.freeCount === free0 - 3,
            `expected 3 tables allocated, free went ${free0} -> ${mem.freeCount}`,
          );
          kassert(mm.pgd.tables[1] === 1 && mm.pgd.tables[2] === 1 && mm.pgd.tables[3] === 1, 'table counts');
          kassert(env.vmstat.pgtableAlloc >= 3, 'allocations not counted');
        };
      },
    };
    exploreInTest(scenario, { policy: 'random', runs: 100, seed: 1 }, name);
    exploreInTest(scenario, { policy: 'pct', runs: 100, seed: 2, depth: 3 }, name);
  });

  it('reports out of memory as null/false, leaving the entry empty', () => {
    const mem = new PhysicalMemory({ size: 2 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    const pmdp = runSync(pmdAllocWalk(env, mm, VA));
    expect(pmdp).not.toBeNull();
    while (mem.freeCount > 0) mem.allocPages(0);
    expect(runSync(pteAlloc(env, mm, pmdp as number))).toBe(false);
    expect(pmdNone(mm.pgd.readEntry(pmdp as number))).toBe(true);
    expect(() => runSync(pteAllocMap(env, mm, VA))).toThrow(/out of simulated memory/);
  });

  it('an mm built with the NoPageTables test double has no mm.pgd', () => {
    const mm = new MmStruct();
    expect(() => mm.pgd).toThrow(NoPageTablesError);
  });
});

describe('add_mm_counter', () => {
  it('counts the same with per-CPU and atomic counters; only the atomic one touches the shared line', () => {
    for (const rssCounting of ['percpu', 'atomic'] as const) {
      const mm = new MmStruct({ rssCounting });
      runSync(addMmCounter(mm, 1, 3));
      runSync(addMmCounter(mm, 1, -1));
      expect(mm.rss[1]).toBe(2);
      expect(mm.rssCpuLines.length).toBe(rssCounting === 'percpu' ? 1 : 0);
    }
  });
});

describe('page-table allocation: each level on its own', () => {
  it('out of memory for a missing PUD or page directory: null, nothing installed, nothing counted', () => {
    const mem = new PhysicalMemory({ size: 2 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    while (mem.freeCount > 0) mem.allocPages(0);
    expect(runSync(pmdAllocWalk(env, mm, VA))).toBeNull();
    expect(pgdNone(mm.pgd.readEntry(mm.pgd.pgdOffset(VA)))).toBe(true);
    expect(mm.pgd.tables.slice(1, 4)).toEqual([0, 0, 0]);
    expect(env.vmstat.pgtableAlloc).toBe(0);
    expect(mm.pageTableLock.isLocked()).toBe(false);
    expect(() => runSync(pteAllocMap(env, mm, VA))).toThrow(OutOfMemoryError);
    expect(() => runSync(pteAllocMap(env, mm, VA))).toThrow(`for 0x${VA.toString(16)}`);
  });

  it('a PUD exists but the page directory cannot be allocated: pmd_alloc fails alone', () => {
    const mem = new PhysicalMemory({ size: 2 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    expect(runSync(pmdAllocWalk(env, mm, VA))).not.toBeNull();
    while (mem.freeCount > 0) mem.allocPages(0);
    const other = VA + 2 ** 30; // the same PUD table, another 1 GiB entry
    expect(runSync(pmdAllocWalk(env, mm, other))).toBeNull();
    expect(mm.pgd.tables.slice(1, 4)).toEqual([0, 1, 1]);
    expect(env.vmstat.pgtableAlloc).toBe(2);
  });

  it('allocates each missing table once, counts it and charges clearing it; present tables cost nothing', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    const delays: number[] = [];
    const ptep = runSync(
      (function* () {
        const code = pteAllocMap(env, mm, VA);
        let resume: unknown;
        for (;;) {
          const r = code.next(resume);
          if (r.done) return r.value;
          if (r.value.kind === EffectKind.Delay) delays.push(r.value.ns);
          resume = yield r.value;
        }
      })(),
    );
    expect(env.vmstat.pgtableAlloc).toBe(3);
    expect(delays).toEqual([env.cost.zeroPage, env.cost.zeroPage, env.cost.zeroPage]);
    const free = mem.freeCount;
    const pmdp = runSync(pmdAllocWalk(env, mm, VA)) as number;
    expect(runSync(pteAlloc(env, mm, pmdp))).toBe(true);
    expect(runSync(pteAllocMap(env, mm, VA + 4096))).toBe(ptep + 8);
    expect(env.vmstat.pgtableAlloc).toBe(3);
    expect(mem.freeCount).toBe(free);
  });

  it('with 5-level paging p4d_alloc allocates the P4D table under page_table_lock; with 4 levels it is the pgd entry', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const four = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    const pgdp4 = four.pgd.pgdOffset(VA);
    expect(runSync(p4dAlloc(env, four, pgdp4, VA))).toBe(pgdp4);
    expect(env.vmstat.pgtableAlloc).toBe(0);
    // An mm-shaped object on LA57 page tables (PagetableOps builds 4-level ones only).
    const pgd = new PageTables(mem, { la57: true });
    const mm = { pgd, pageTableLock: new SpinLock('page_table_lock') } as unknown as MmStruct;
    const pgdp = pgd.pgdOffset(VA);
    const p4dp = runSync(p4dAlloc(env, mm, pgdp, VA));
    expect(p4dp).not.toBe(pgdp);
    expect(pgdNone(pgd.readEntry(pgdp))).toBe(false);
    expect(pgd.tables[4]).toBe(1);
    expect(p4dp).toBe(runSync(pgd.p4dOffset(pgdp, VA)));
    expect(runSync(p4dAlloc(env, mm, pgdp, VA))).toBe(p4dp);
    expect(pgd.tables[4]).toBe(1);
    expect(env.vmstat.pgtableAlloc).toBe(1);
    // Out of memory for the P4D table of another pgd entry.
    while (mem.freeCount > 0) mem.allocPages(0);
    const far = VA + 2 ** 48;
    expect(runSync(p4dAlloc(env, mm, pgd.pgdOffset(far), far))).toBeNull();
    expect(mm.pageTableLock.isLocked()).toBe(false);
  });
});

/** Runs `code` to the end and returns its result with the labels of its machine writes, in order. */
function withWrites<T>(code: Kernel<T>): { result: T; writes: string[] } {
  const writes: string[] = [];
  const result = runSync(
    (function* () {
      let resume: unknown;
      for (;;) {
        const r = code.next(resume);
        if (r.done) return r.value;
        if (r.value.kind === EffectKind.Write) writes.push(r.value.label ?? '');
        resume = yield r.value;
      }
    })(),
  );
  return { result, writes };
}

describe('page-table allocation: what the trace shows', () => {
  it('names each step of __pud_alloc(), __pmd_alloc() and __pte_alloc(): the zeroing, the check under the lock, the populate', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    const labels: string[] = [];
    runSync(
      (function* () {
        const code = pteAllocMap(env, mm, VA);
        let resume: unknown;
        for (;;) {
          const r = code.next(resume);
          if (r.done) return r.value;
          const label = (r.value as { label?: string }).label;
          if (label !== undefined && /populate|clear_page/.test(label)) labels.push(label);
          resume = yield r.value;
        }
      })(),
    );
    // PUD and page directory under page_table_lock (re-checked before populating), the PTE table under the
    // PMD's split lock (pmd_install()).
    expect(labels).toEqual([
      'clear_page (page table)',
      'populate check',
      'populate',
      'clear_page (page table)',
      'populate check',
      'populate',
      'clear_page (page table)',
      'pmd_populate',
    ]);
  });
});

describe('pgtableAllocUnderPtl: every missing table installed with page_table_lock held by the caller', () => {
  it('installs the PUD, page directory and PTE tables once, each linked in its parent; a second call costs nothing', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    const free0 = mem.freeCount;
    const { result, writes } = withWrites(pgtableAllocUnderPtl(env, mm, VA));
    expect(result).toBe(true);
    // __pud_alloc() and __pmd_alloc() store under the held page_table_lock, pmd_install() under the PMD lock.
    expect(writes.filter((w) => w.includes('populate'))).toEqual([
      'populate (speculative)',
      'populate (speculative)',
      'pmd_populate (speculative)',
    ]);
    expect(mm.pgd.tables.slice(1, 4)).toEqual([1, 1, 1]);
    expect(env.vmstat.pgtableAlloc).toBe(3);
    expect(mem.freeCount).toBe(free0 - 3);
    // The walk reaches the new PTE table, the one pte_alloc_map() finds (no new allocation).
    const steps = mm.pgd.lookup(VA);
    expect(steps.map((s) => s.level)).toEqual([4, 3, 2, 1]);
    const ptep = runSync(pteAllocMap(env, mm, VA));
    expect(mem.freeCount).toBe(free0 - 3);
    // Every level present: nothing allocated, nothing written, true.
    const again = withWrites(pgtableAllocUnderPtl(env, mm, VA + PAGE));
    expect(again).toEqual({ result: true, writes: [] });
    expect(mem.freeCount).toBe(free0 - 3);
    expect(env.vmstat.pgtableAlloc).toBe(3);
    expect(runSync(pteAllocMap(env, mm, VA + PAGE))).toBe(ptep + 8);
    expect(pmdLockptr(mm.pgd, runSync(pmdAllocWalk(env, mm, VA)) as number).isLocked()).toBe(false);
  });

  it('installs only the levels missing: a new page directory under a present PUD, a PTE table under a present one', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
    expect(runSync(pgtableAllocUnderPtl(env, mm, VA))).toBe(true);
    const nextGiB = VA + 2 ** 30; // the same PUD table, another entry: a page directory and a PTE table
    expect(
      withWrites(pgtableAllocUnderPtl(env, mm, nextGiB)).writes.filter((w) => w.includes('populate')),
    ).toEqual(['populate (speculative)', 'pmd_populate (speculative)']);
    expect(mm.pgd.tables.slice(1, 4)).toEqual([2, 2, 1]);
    const next2MiB = VA + 2 * MiB; // the same page directory, another entry: a PTE table only
    expect(
      withWrites(pgtableAllocUnderPtl(env, mm, next2MiB)).writes.filter((w) => w.includes('populate')),
    ).toEqual(['pmd_populate (speculative)']);
    expect(mm.pgd.tables.slice(1, 4)).toEqual([3, 2, 1]);
    expect(env.vmstat.pgtableAlloc).toBe(6);
    for (const a of [VA, nextGiB, next2MiB])
      expect(mm.pgd.lookup(a).map((s) => s.level)).toEqual([4, 3, 2, 1]);
  });

  it('out of memory at each level: false, the levels installed before it stay (as in Linux)', () => {
    for (const room of [0, 1, 2]) {
      const mem = new PhysicalMemory({ size: 4 * MiB });
      const env = makeMemoryEnv({ mem });
      const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
      runSync(pmdAllocWalk(env, mm, 0)); // the pgd itself and the low tables, before memory runs out
      const before = mm.pgd.tables.slice(1, 4);
      while (mem.freeCount > room) mem.allocPages(0);
      expect(runSync(pgtableAllocUnderPtl(env, mm, VA))).toBe(false);
      // room 0: nothing; 1: the PUD table; 2: the PUD table and the page directory.
      const got = mm.pgd.tables.slice(1, 4).map((n, i) => n - before[i]);
      expect(got).toEqual([0, room >= 2 ? 1 : 0, room >= 1 ? 1 : 0]);
      expect(mm.pgd.lookup(VA).length).toBe(1 + room);
      expect(mem.freeCount).toBe(0);
    }
  });

  it('stops at the level that ran out: memory freed by another CPU just after installs nothing below it', () => {
    for (const failing of [3, 2] as const) {
      const mem = new PhysicalMemory({ size: 4 * MiB });
      const env = makeMemoryEnv({ mem });
      const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
      const pt = mm.pgd;
      const alloc = pt.allocTablePage.bind(pt);
      let failed = false;
      // The allocation of this level finds no free page; the next one would find the page freed meanwhile.
      pt.allocTablePage = (level) => {
        if (level === failing && !failed) {
          failed = true;
          return null;
        }
        return alloc(level);
      };
      expect(runSync(pgtableAllocUnderPtl(env, mm, VA))).toBe(false);
      expect(pt.tables.slice(1, 4)).toEqual(failing === 3 ? [0, 0, 0] : [0, 0, 1]);
      expect(pt.lookup(VA).length).toBe(failing === 3 ? 1 : 2);
    }
  });

  it('with 5-level paging also installs the P4D table; out of memory there installs nothing', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const env = makeMemoryEnv({ mem });
    const pgd = new PageTables(mem, { la57: true });
    const mm = { pgd, pageTableLock: new SpinLock('page_table_lock') } as unknown as MmStruct;
    expect(runSync(pgtableAllocUnderPtl(env, mm, VA))).toBe(true);
    expect(pgd.tables.slice(1, 5)).toEqual([1, 1, 1, 1]);
    expect(pgd.lookup(VA).map((s) => s.level)).toEqual([5, 4, 3, 2, 1]);
    expect(runSync(pgtableAllocUnderPtl(env, mm, VA))).toBe(true);
    expect(pgd.tables.slice(1, 5)).toEqual([1, 1, 1, 1]);
    while (mem.freeCount > 0) mem.allocPages(0);
    const far = VA + 2 ** 48; // another pgd entry: its P4D table cannot be allocated
    expect(runSync(pgtableAllocUnderPtl(env, mm, far))).toBe(false);
    expect(pgdNone(pgd.readEntry(pgd.pgdOffset(far)))).toBe(true);
    expect(pgd.tables.slice(1, 5)).toEqual([1, 1, 1, 1]);
  });

  it('racing a classic fault for the PTE table under the split PMD lock: one table installed, the loser freed (explored)', () => {
    const name = 'pgtableAllocUnderPtl racing pte_alloc_map';
    const scenario: Scenario = {
      name,
      cpus: 2,
      setup(m) {
        const mem = new PhysicalMemory({ size: 16 * MiB, lineOf: (pa) => m.physLine(pa) });
        const env = makeMemoryEnv({ mem });
        const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ env }) });
        runSync(pmdAllocWalk(env, mm, VA)); // the upper levels exist: only the PTE table is raced for
        const free0 = mem.freeCount;
        let spec: boolean | undefined;
        m.spawn(0, 'spf', function* () {
          yield* mm.pageTableLock.lock();
          spec = yield* pgtableAllocUnderPtl(env, mm, VA);
          yield* mm.pageTableLock.unlock();
        });
        m.spawn(1, 'classic', function* () {
          yield* pteAllocMap(env, mm, VA);
        });
        return () => {
          kassert(spec === true, `pgtableAllocUnderPtl returned ${spec}`);
          kassert(mm.pgd.lookup(VA).length === 4, 'no PTE table installed');
          kassert(mm.pgd.tables[1] === 1, `${mm.pgd.tables[1]} PTE tables counted`);
          kassert(mem.freeCount === free0 - 1, `free went ${free0} -> ${mem.freeCount}: a table leaked`);
        };
      },
    };
    exploreInTest(scenario, { policy: 'random', runs: 100, seed: 3 }, name);
    exploreInTest(scenario, { policy: 'pct', runs: 100, seed: 4, depth: 3 }, name);
  });
});
