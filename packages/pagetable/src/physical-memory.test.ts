import { runSync, UseAfterFreeError } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import {
  DoubleFreeError,
  InvalidArgumentError,
  InvalidFreeError,
  OutOfMemoryError,
  PhysicalAddressError,
  WildAccessError,
  ZeroPageWriteError,
} from './errors.js';
import {
  getPage,
  lockPage,
  pageMapcountDec,
  pageMapcountInc,
  putPage,
  trylockPage,
  unlockPage,
} from './page-ref.js';
import { MAX_ORDER, PhysicalMemory } from './physical-memory.js';

const MiB = 1024 * 1024;

describe('PhysicalMemory: buddy allocator (mm/page_alloc.c)', () => {
  it('allocates naturally aligned blocks of every order up to 18 (1 GiB)', () => {
    const mem = new PhysicalMemory({ size: 2052 * MiB });
    for (let o = MAX_ORDER; o >= 0; o--) {
      const pfn = mem.allocFrames(o);
      expect(pfn % (1 << o), `order ${o}`).toBe(0);
    }
  });
  it('freeing merges buddies back into the block they came from', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const free0 = mem.freeCount;
    const info0 = mem.buddyInfo();
    const a = mem.allocFrames(0);
    const b = mem.allocFrames(0);
    const c = mem.allocFrames(3);
    expect(mem.freeCount).toBe(free0 - 10);
    mem.freeFrames(b, 0);
    mem.freeFrames(a, 0);
    mem.freeFrames(c, 3);
    expect(mem.freeCount).toBe(free0);
    expect(mem.buddyInfo()).toEqual(info0);
  });
  it('hands out distinct frames until memory runs out, then throws OutOfMemoryError and changes nothing', () => {
    const mem = new PhysicalMemory({ size: 64 * 4096 });
    const seen = new Set<number>();
    for (;;) {
      try {
        const p = mem.allocFrames(0);
        expect(seen.has(p)).toBe(false);
        seen.add(p);
      } catch (e) {
        expect(e).toBeInstanceOf(OutOfMemoryError);
        expect((e as Error).message).toMatch(/out of memory/);
        break;
      }
    }
    expect(seen.size).toBe(62); // frame 0 and the zero page are reserved
    expect(mem.freeCount).toBe(0);
    expect(() => mem.allocFrames(0)).toThrow(OutOfMemoryError);
  });
  it('a fragmented memory cannot satisfy a large order even with enough free frames', () => {
    const mem = new PhysicalMemory({ size: 64 * 4096, zeroPage: false });
    const all: number[] = [];
    while (mem.freeCount > 0) all.push(mem.allocFrames(0));
    for (const p of all) if (p % 2 === 0) mem.freeFrames(p, 0);
    expect(mem.freeCount).toBeGreaterThan(8);
    expect(() => mem.allocFrames(1)).toThrow(OutOfMemoryError);
  });
  it('double free is a typed error naming the first freer, and leaves the allocator unchanged', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const p = mem.allocFrames(0);
    mem.freeFrames(p, 0, 'first-freer');
    const before = mem.buddyInfo();
    expect(() => mem.freeFrames(p, 0, 'second')).toThrow(DoubleFreeError);
    expect(() => mem.freeFrames(p, 0, 'second')).toThrow(/first-freer/);
    expect(mem.buddyInfo()).toEqual(before);
  });
  it('freeing with the wrong order, a tail frame, or a reserved frame is an InvalidFreeError', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const p = mem.allocFrames(2);
    expect(() => mem.freeFrames(p, 1)).toThrow(InvalidFreeError);
    expect(() => mem.freeFrames(p + 1, 0)).toThrow(InvalidFreeError);
    expect(() => mem.freeFrames(0, 0)).toThrow(InvalidFreeError);
    expect(() => mem.freeFrames(1 << 30, 0)).toThrow(PhysicalAddressError);
    mem.freeFrames(p, 2);
  });
  it('rejects bad configuration with typed errors', () => {
    expect(() => new PhysicalMemory({ size: 12345 })).toThrow(InvalidArgumentError);
    expect(() => new PhysicalMemory({ maxPhyAddr: 60 })).toThrow(InvalidArgumentError);
    expect(() => new PhysicalMemory({ size: 2 ** 37, maxPhyAddr: 36 })).toThrow(PhysicalAddressError);
    expect(() => new PhysicalMemory().allocFrames(19)).toThrow(InvalidArgumentError);
  });
});

describe('PhysicalMemory: contents', () => {
  it('keeps the contents of many frames apart (byte, word and block accesses)', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB });
    const pfns = Array.from({ length: 40 }, () => mem.allocFrames(0));
    pfns.forEach((pfn, i) => {
      mem.write8(pfn * 4096 + 5, i + 1);
      mem.write64(pfn * 4096 + 8, BigInt(i) << 40n);
      mem.writeBytes(pfn * 4096 + 4094, new Uint8Array([i, i + 100]));
    });
    pfns.forEach((pfn, i) => {
      expect(mem.read8(pfn * 4096 + 5)).toBe(i + 1);
      expect(mem.read64(pfn * 4096 + 8)).toBe(BigInt(i) << 40n);
      expect([...mem.readBytes(pfn * 4096, 8)]).toEqual([0, 0, 0, 0, 0, i + 1, 0, 0]);
      expect([...mem.readBytes(pfn * 4096 + 4094, 2)]).toEqual([i, i + 100]);
    });
  });
  it('reads back what was written, across frame boundaries', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const p = mem.allocFrames(1) * 4096;
    const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    mem.writeBytes(p + 4050, data);
    expect(Array.from(mem.readBytes(p + 4050, 100))).toEqual(Array.from(data));
    mem.write8(p + 3, 0xab);
    expect(mem.read8(p + 3)).toBe(0xab);
    mem.write64(p + 8, 0x8000_0000_dead_beefn);
    expect(mem.read64(p + 8)).toBe(0x8000_0000_dead_beefn);
  });
  it('allocates host memory only on the first non-zero write', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pfn = mem.allocFrames(0);
    mem.writeBytes(pfn * 4096, new Uint8Array(4096));
    mem.write64(pfn * 4096, 0n);
    mem.write8(pfn * 4096 + 7, 0);
    expect(mem.hasContents(pfn)).toBe(false);
    expect(mem.read8(pfn * 4096 + 5)).toBe(0);
    mem.write8(pfn * 4096 + 7, 1);
    expect(mem.hasContents(pfn)).toBe(true);
  });
  it('a frame written with one non-zero word holds no host page, and reads, writes and copies it like any other', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const a = mem.allocFrames(0);
    const pa = a * 4096;
    mem.write8(pa + 1001, 0x5a);
    mem.write8(pa + 1002, 0x7f); // the same 32-bit word (bytes 1000..1003)
    expect(mem.words[a]).toBeUndefined();
    expect(mem.hasContents(a)).toBe(true);
    expect([mem.read8(pa + 1000), mem.read8(pa + 1001), mem.read8(pa + 1002), mem.read8(pa + 4)]).toEqual([
      0, 0x5a, 0x7f, 0,
    ]);
    expect(Array.from(mem.readBytes(pa + 998, 6))).toEqual([0, 0, 0, 0x5a, 0x7f, 0]);
    expect(mem.read64(pa + 1000)).toBe(0x7f5a00n);
    // Copy-on-write copies keep the one word; clearing it again leaves an all-zero frame.
    const b = mem.allocFrames(0);
    mem.copyFrame(b, a);
    expect(mem.read8(b * 4096 + 1001)).toBe(0x5a);
    mem.write8(b * 4096 + 1001, 0);
    mem.write8(b * 4096 + 1002, 0);
    expect(mem.hasContents(b)).toBe(false);
    expect(mem.read8(pa + 1001)).toBe(0x5a);
    // A write to another word gives the frame full contents, keeping the first word.
    mem.write8(pa + 8, 3);
    expect(mem.words[a]).toBeDefined();
    expect([mem.read8(pa + 8), mem.read8(pa + 1001), mem.read8(pa + 1002)]).toEqual([3, 0x5a, 0x7f]);
    // An all-zero writeBytes over the word clears it; so do zeroFrame and freeing the frame.
    const c = mem.allocFrames(0);
    mem.write8(c * 4096 + 40, 9);
    mem.writeBytes(c * 4096 + 38, new Uint8Array(4));
    expect(mem.read8(c * 4096 + 40)).toBe(0);
    mem.write8(c * 4096 + 40, 9);
    mem.zeroFrame(c);
    expect(mem.hasContents(c)).toBe(false);
    mem.write8(c * 4096 + 40, 9);
    mem.freeFrames(c, 0);
    const again = mem.allocFrames(0);
    expect(again).toBe(c);
    expect(mem.read8(c * 4096 + 40)).toBe(0);
    // A 64-bit write over a one-word frame, and a copy of one into the zero page (refused).
    const d = mem.allocFrames(0);
    mem.write8(d * 4096 + 16, 1);
    mem.write64(d * 4096 + 16, 0n);
    expect(mem.read8(d * 4096 + 16)).toBe(0);
    mem.write8(d * 4096 + 16, 1);
    expect(() => mem.copyFrame(mem.zeroPfn, d)).toThrow(ZeroPageWriteError);
  });
  it('zeroFrame and copyFrame', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const a = mem.allocFrames(0);
    const b = mem.allocFrames(0);
    mem.write8(a * 4096 + 100, 42);
    mem.copyFrame(b, a);
    expect(mem.read8(b * 4096 + 100)).toBe(42);
    mem.zeroFrame(a);
    expect(mem.read8(a * 4096 + 100)).toBe(0);
    expect(mem.hasContents(a)).toBe(false);
    expect(mem.read8(b * 4096 + 100)).toBe(42);
  });
  it('a failed multi-frame write (into a freed frame) changes nothing', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const a = mem.allocFrames(1);
    mem.freeFrames(a, 1);
    const c = mem.allocFrames(0);
    const d = mem.allocFrames(0);
    mem.freeFrames(d, 0, 'test');
    // c is allocated, d (next to it or not) is free: write across c's end only if d follows c.
    const start = c * 4096 + 4000;
    if (d === c + 1) {
      expect(() => mem.writeBytes(start, new Uint8Array(200).fill(7))).toThrow(UseAfterFreeError);
      expect(mem.hasContents(c)).toBe(false);
    }
  });
  it('the zero page reads as zeroes and refuses writes; it can be switched off', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const z = mem.zeroPage!;
    expect(z.test('reserved')).toBe(true);
    expect(mem.read8(z.pa + 10)).toBe(0);
    expect(() => mem.write8(z.pa, 1)).toThrow(ZeroPageWriteError);
    expect(() => mem.write8(z.pa, 0)).toThrow(ZeroPageWriteError);
    const off = new PhysicalMemory({ size: 16 * MiB, zeroPage: false });
    expect(off.zeroPage).toBeNull();
    expect(off.zeroPfn).toBe(-1);
  });
  it('accesses outside memory are typed errors', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    expect(() => mem.read8(16 * MiB)).toThrow(PhysicalAddressError);
    expect(() => mem.read64(4097)).toThrow(InvalidArgumentError);
  });
  it('walkReadLow reads and refuses exactly what walkRead does, with the same errors', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const written = mem.allocFrames(0);
    mem.write64(written * 4096 + 8, 0x8000_0001_2345_6067n);
    const untouched = mem.allocFrames(0);
    const freed = mem.allocFrames(0);
    mem.freeFrames(freed, 0, 'the test');
    const cases = [
      written * 4096 + 8, // an entry with high bits
      written * 4096 + 16, // a zero entry in a frame with contents
      untouched * 4096, // a frame without contents
      written * 4096 + 4, // misaligned
      freed * 4096, // use after free
      (mem.frames - 1) * 4096, // never allocated
      16 * MiB, // beyond memory
      -8, // not an address
    ];
    const outcome = (f: () => bigint) => {
      try {
        return f();
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    for (const pa of cases) {
      const low = outcome(() => {
        const lo = mem.walkReadLow(pa);
        return (BigInt(mem.walkHigh) << 32n) | BigInt(lo);
      });
      expect(low, `pa ${pa}`).toEqual(outcome(() => mem.walkRead(pa)));
    }
    expect(mem.walkRead(written * 4096 + 8)).toBe(0x8000_0001_2345_6067n);
    expect(outcome(() => mem.walkRead(written * 4096 + 4))).toMatch(
      /^InvalidArgumentError: .*not 8-byte aligned/,
    );
    expect(outcome(() => mem.walkRead(freed * 4096))).toMatch(
      /^UseAfterFreeError: page walk: .*freed by the test/,
    );
  });
  it('read64Low and setLowBits read, write and refuse exactly what read64 and write64 do, with the same errors', () => {
    const setup = () => {
      const mem = new PhysicalMemory({ size: 16 * MiB });
      const written = mem.allocFrames(0);
      mem.write64(written * 4096 + 8, 0x8000_0001_2345_6007n);
      const one = mem.allocFrames(0);
      mem.write8(one * 4096 + 24, 0x11); // a frame that holds one non-zero word
      const untouched = mem.allocFrames(0);
      const freed = mem.allocFrames(0);
      mem.freeFrames(freed, 0, 'the test');
      const pas = [
        written * 4096 + 8, // an entry with high bits
        one * 4096 + 24, // the one non-zero word of a frame without full contents
        one * 4096 + 32, // another entry of that frame
        untouched * 4096, // a frame without contents
        written * 4096 + 4, // misaligned
        freed * 4096, // use after free
        (mem.frames - 1) * 4096, // never allocated
        mem.zeroPfn * 4096, // the shared zero page: readable, not writable
        16 * MiB, // beyond memory
      ];
      return { mem, pas };
    };
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    const a = setup();
    const b = setup();
    for (let k = 0; k < a.pas.length; k++) {
      const low = outcome(() => {
        const lo = a.mem.read64Low(a.pas[k]);
        return (BigInt(a.mem.walkHigh) << 32n) | BigInt(lo);
      });
      expect(low, `read at ${a.pas[k]}`).toEqual(outcome(() => b.mem.read64(b.pas[k])));
      // Setting the accessed and dirty bits, both ways: the same errors, and then the same entry.
      const set = outcome(() => a.mem.setLowBits(a.pas[k], 0x60));
      const old = outcome(() => b.mem.read64(b.pas[k]));
      const put = outcome(() => b.mem.write64(b.pas[k], (typeof old === 'bigint' ? old : 0n) | 0x60n));
      expect(set, `write at ${a.pas[k]}`).toEqual(put);
      expect(outcome(() => a.mem.read64(a.pas[k]))).toEqual(outcome(() => b.mem.read64(b.pas[k])));
    }
    expect(a.mem.read64(a.pas[0])).toBe(0x8000_0001_2345_6067n);
  });
});

describe('PhysicalMemory: poisoning (KASAN-like)', () => {
  it('reading a freed frame is a use-after-free naming the frame and who freed it', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const pfn = mem.allocFrames(0);
    mem.write8(pfn * 4096, 9);
    mem.freeFrames(pfn, 0, 'munmap by task A');
    expect(() => mem.read8(pfn * 4096)).toThrow(UseAfterFreeError);
    expect(() => mem.read8(pfn * 4096)).toThrow(new RegExp(`0x${pfn.toString(16)}.*munmap by task A`));
  });
  it('with a quarantine, a freed frame is not reused at once, so a stale access after reallocation is caught', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB, quarantine: 64 });
    const free0 = mem.freeCount;
    const pfn = mem.allocFrames(0);
    mem.freeFrames(pfn, 0, 'free_pte_range');
    expect(mem.freeCount).toBe(free0);
    expect(mem.quarantinedCount).toBe(1);
    const other = mem.allocFrames(0);
    expect(other).not.toBe(pfn);
    expect(() => mem.read64(pfn * 4096)).toThrow(/free_pte_range/);
    expect(() => mem.freeFrames(pfn, 0)).toThrow(DoubleFreeError);
    for (let i = 0; i < 64; i++) mem.freeFrames(mem.allocFrames(0), 0);
    expect(mem.quarantinedCount).toBe(64);
    mem.drainQuarantine();
    expect(mem.quarantinedCount).toBe(0);
    mem.freeFrames(other, 0);
    mem.drainQuarantine();
    expect(mem.freeCount).toBe(free0);
  });
  it('an allocation that finds no block drains the quarantine', () => {
    const mem = new PhysicalMemory({ size: 8 * 4096, quarantine: 1000 });
    const all: number[] = [];
    while (mem.freeCount > 0) all.push(mem.allocFrames(0));
    for (const p of all) mem.freeFrames(p, 0);
    expect(mem.quarantinedCount).toBe(all.length);
    expect(mem.allocFrames(2) % 4).toBe(0);
  });
  it('a never-allocated frame is a wild access', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    expect(() => mem.read8(8 * MiB)).toThrow(WildAccessError);
  });
  it('a stale Page object is caught even after its frame was reallocated', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const page = mem.allocPages(0);
    mem.freePages(page, 0, 'put_page in test');
    const again = mem.allocPages(0);
    expect(again.pfn).toBe(page.pfn); // LIFO reuse
    expect(again.refcount).toBe(1);
    expect(() => page.refcount).toThrow(UseAfterFreeError);
    expect(() => page.refcount).toThrow(/put_page in test/);
  });
});

describe('struct page and its kernel forms', () => {
  it('get_page/put_page count references and the last put frees the block', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const free0 = mem.freeCount;
    const page = mem.allocPages(2);
    expect(page.refcount).toBe(1);
    expect(page.order).toBe(2);
    runSync(getPage(page));
    expect(page.refcount).toBe(2);
    expect(runSync(putPage(page))).toBe(false);
    expect(runSync(putPage(page))).toBe(true);
    expect(mem.freeCount).toBe(free0);
    expect(() => runSync(putPage(page))).toThrow(UseAfterFreeError);
  });
  it('mapcount increments report the first mapping and decrements the last unmapping', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const page = mem.allocPages(0);
    expect(runSync(pageMapcountInc(page))).toBe(true);
    expect(runSync(pageMapcountInc(page))).toBe(false);
    expect(runSync(pageMapcountDec(page))).toBe(false);
    expect(runSync(pageMapcountDec(page))).toBe(true);
    expect(() => runSync(pageMapcountDec(page))).toThrow(/below zero/);
  });
  it('page flags and the page lock', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const page = mem.allocPages(0);
    page.set('dirty');
    page.set('uptodate');
    expect(page.flagNames()).toEqual(['uptodate', 'dirty']);
    expect(runSync(trylockPage(page))).toBe(true);
    expect(runSync(trylockPage(page))).toBe(false);
    runSync(unlockPage(page));
    runSync(lockPage(page));
    expect(page.test('locked')).toBe(true);
    runSync(unlockPage(page));
    expect(() => runSync(unlockPage(page))).toThrow(/not locked/);
  });
  it('get_page/put_page on a tail page count on the head and free the whole block', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const free0 = mem.freeCount;
    const head = mem.allocPages(3);
    const tail = mem.page(head.pfn + 5);
    runSync(getPage(tail));
    expect(head.refcount).toBe(2);
    expect(tail.refcount).toBe(0);
    runSync(putPage(tail));
    expect(runSync(putPage(head))).toBe(true);
    expect(mem.freeCount).toBe(free0);
  });
  it('compound_head finds the head of a high-order block', () => {
    const mem = new PhysicalMemory({ size: 16 * MiB });
    const head = mem.allocFrames(4);
    expect(mem.compoundHead(head + 7)).toBe(head);
    expect(mem.page(head).test('head')).toBe(true);
  });
});
