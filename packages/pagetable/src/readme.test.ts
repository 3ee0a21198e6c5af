import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_USER,
  ACCESS_WRITE,
  dumpPageTables,
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
});
