import { Rcu } from '@spf/locks';
import { exploreInTest, kassert, runSync, type Scenario } from '@spf/machine';
import { PhysicalMemory, pmdNone } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct, NoPageTablesError } from '../mm-struct.js';
import { PagetableOps } from '../pagetable-backed-ops.js';
import { makeMemoryEnv } from './memory-env.js';
import { addMmCounter } from './mm-counter.js';
import { pmdAllocWalk, pteAlloc, pteAllocMap } from './page-table-alloc.js';

const MiB = 1024 * 1024;
const VA = 0x7f00_0020_3000;

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
