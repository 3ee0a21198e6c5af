import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { ACCESS_USER, Mmu } from './mmu.js';
import { PageTables } from './page-tables.js';
import { PhysicalMemory } from './physical-memory.js';
import { Tlb } from './tlb.js';

const BASE = 0x5555_0000_0000;

type Op =
  | { op: 'map'; page: number; frame: number }
  | { op: 'unmap'; page: number }
  | { op: 'read'; page: number }
  | { op: 'invlpg'; page: number }
  | { op: 'cr3' };

describe('TLB semantics (SDM 4.10): a translation is current or was valid since the last invalidation', () => {
  it('property: random map/unmap/read/INVLPG/CR3 sequences never return anything else', () => {
    const page = fc.integer({ min: 0, max: 3 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('map' as const), page, frame: fc.integer({ min: 0x100, max: 0x120 }) }),
      fc.record({ op: fc.constant('unmap' as const), page }),
      fc.record({ op: fc.constant('read' as const), page }),
      fc.record({ op: fc.constant('read' as const), page }),
      fc.record({ op: fc.constant('invlpg' as const), page }),
      fc.record({ op: fc.constant('cr3' as const) }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 20, maxLength: 120 }),
        fc.constantFrom(16, 1024),
        (ops, entries) => {
          const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
          const pt = new PageTables(mem);
          const mmu = new Mmu(mem, { tlb: { entries4k: entries } });
          mmu.switchMm(0, pt);
          const current = new Map<number, number>();
          const allowed = new Map<number, Set<number>>(); // pages each VA may still reach through the TLB
          const allow = (p: number, pa: number) => {
            if (!allowed.has(p)) allowed.set(p, new Set());
            allowed.get(p)!.add(pa);
          };
          for (const o of ops) {
            // Spread pages so that with 16 entries some of them collide in the TLB.
            const va = o.op === 'cr3' ? 0 : BASE + o.page * 0x8000;
            if (o.op === 'map') {
              if (current.has(o.page)) continue;
              pt.map(va, o.frame * 4096);
              current.set(o.page, o.frame * 4096);
            } else if (o.op === 'unmap') {
              pt.unmap(va);
              current.delete(o.page);
            } else if (o.op === 'invlpg') {
              mmu.invlpg(0, va);
              allowed.delete(o.page);
            } else if (o.op === 'cr3') {
              mmu.loadCr3(0, pt.pgd);
              allowed.clear();
            } else {
              const pa = mmu.access(0, va + 8, ACCESS_USER);
              const cur = current.get(o.page);
              const ok = allowed.get(o.page) ?? new Set<number>();
              if (pa >= 0) {
                expect(
                  pa === (cur ?? -1) + 8 || ok.has(pa - 8),
                  `page ${o.page} gave 0x${pa.toString(16)}`,
                ).toBe(true);
                allow(o.page, pa - 8);
              } else {
                expect(cur, `page ${o.page} is mapped but faulted`).toBeUndefined();
                allowed.delete(o.page); // the #PF dropped whatever entry there was
              }
            }
          }
        },
      ),
      {
        numRuns: 400,
        examples: [
          [
            [
              { op: 'map', page: 1, frame: 0x100 },
              { op: 'read', page: 1 },
              { op: 'unmap', page: 1 },
              { op: 'invlpg', page: 1 },
              { op: 'read', page: 1 },
            ],
            16,
          ],
        ],
      },
    );
  });
  it('keeps address spaces apart by PCID and global entries across them', () => {
    const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
    const a = new PageTables(mem, { pcid: 1 });
    const b = new PageTables(mem, { pcid: 2 });
    const mmu = new Mmu(mem, { cpus: 2 });
    mmu.cpu(0).pcide = true;
    a.map(BASE, 0x10_0000);
    b.map(BASE, 0x20_0000);
    mmu.switchMm(0, a);
    expect(mmu.access(0, BASE, ACCESS_USER)).toBe(0x10_0000);
    mmu.switchMm(0, b);
    expect(mmu.access(0, BASE, ACCESS_USER)).toBe(0x20_0000);
    mmu.switchMm(0, a);
    expect(mmu.access(0, BASE, ACCESS_USER)).toBe(0x10_0000);
    expect(a.cpumask.cpus()).toEqual([0]);
    expect(b.cpumask.cpus()).toEqual([0]);
  });
  it('rejects bad TLB sizes, CR3 values and CPUs with typed errors', () => {
    const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
    expect(() => new Tlb({ entries4k: 1000 })).toThrow(InvalidArgumentError);
    const mmu = new Mmu(mem);
    expect(() => mmu.loadCr3(0, 123)).toThrow(InvalidArgumentError);
    expect(() => mmu.loadCr3(0, 4096, { pcid: 3 })).toThrow(/PCIDE/);
    expect(() => mmu.cpu(1)).toThrow(InvalidArgumentError);
    expect(() => mmu.access(2, 0, 0)).toThrow(InvalidArgumentError);
    expect(() => new Mmu(mem, { cpus: 0 })).toThrow(InvalidArgumentError);
  });
});
