import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_USER,
  ACCESS_WRITE,
  dumpPageTables,
  explainWalk,
  formatErrorCode,
  Mmu,
  mkPte,
  PAGE_READONLY,
  PageTables,
  PhysicalMemory,
} from './index.js';

// The README's usage example, kept runnable.
describe('README example', () => {
  it('works as printed', () => {
    const mem = new PhysicalMemory({ size: 64 * 1024 * 1024 }); // 64 MiB, MAXPHYADDR 46
    const pt = new PageTables(mem); // 4-level; { la57: true } for 5-level
    const mmu = new Mmu(mem, { cpus: 2 });
    mmu.switchMm(0, pt); // CR3 := pt.pgd on CPU 0

    // Build tables from the outside...
    const page = mem.allocPages(0);
    pt.map(0x7000_0000_0000, page.pa); // 4 KiB, P RW US by default

    // ...or through the kernel API (each entry access is a machine effect; runSync drives it here).
    const va = 0x7000_0000_1000;
    const ro = mem.allocPages(0);
    runSync(
      (function* () {
        const pmdp = yield* pt.pmdOffset(
          yield* pt.pudOffset(yield* pt.p4dOffset(pt.pgdOffset(va), va), va),
          va,
        );
        const ptep = yield* pt.pteOffsetMap(pmdp, va);
        yield* pt.setPteAt(va, ptep!, mkPte(ro, PAGE_READONLY));
      })(),
    );

    expect(mmu.access(0, 0x7000_0000_0010, ACCESS_USER | ACCESS_WRITE)).toBe(page.pa + 0x10);
    expect(mmu.access(0, va, ACCESS_USER | ACCESS_WRITE)).toBe(-1);
    expect(formatErrorCode(mmu.fault.errorCode)).toBe('P|W|U');
    expect(dumpPageTables(pt)).toContain(
      'PT[001] 0x8000000000007025 va 0x700000001000 -> pa 0x7000 4K [P US A XD]',
    );
  });
  it('explainWalk shows each entry read and the outcome without touching A/D', () => {
    const mem = new PhysicalMemory({ size: 64 * 1024 * 1024 });
    const pt = new PageTables(mem);
    const mmu = new Mmu(mem);
    mmu.switchMm(0, pt);
    pt.map(0x7000_0000_0000, 0x40_0000, { flags: 0x5n, tableFlags: 0x7n });
    const before = dumpPageTables(pt);
    const { result, lines } = explainWalk(mem, mmu.cpu(0).regs(), 0x7000_0000_0008n, {
      kind: 'write',
      user: true,
    });
    expect(result).toMatchObject({ ok: false, errorCode: 7 });
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe('write va 0x700000000008 (user write, 4-level)');
    expect(lines[1]).toMatch(/^ {2}PML4E\[0e0\] @ pa 0x2700 = 0x0000000000003007 \[P RW US\]$/);
    expect(lines[4]).toMatch(/^ {2}PTE\[000\] @ pa 0x[0-9a-f]+ = 0x0000000000400005 \[P US\]$/);
    expect(lines[5]).toBe('-> #PF error code 0x7 (P|W|U), CR2 0x700000000008');
    expect(dumpPageTables(pt)).toBe(before);
    const ok = explainWalk(mem, mmu.cpu(0).regs(), 0x7000_0000_0008n, { kind: 'read', user: true });
    expect(ok.lines.at(-1)).toBe('-> pa 0x400008 (4K page)');
  });
});
