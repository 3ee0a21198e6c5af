import { describe, expect, it } from 'vitest';
import { runSync } from '@spf/machine';
import { sysBrk } from './brk.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { procMaps } from './proc-maps.js';
import { brkSync, mmapSync, munmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  VM_SOFTDIRTY,
} from './vm-flags.js';

const P = 4096;
const B = 0x555555559000; // the default start_brk (page aligned)

/** What a refused brk must leave unchanged. */
const state = (mm: MmStruct) => ({
  brk: mm.brk,
  maps: procMaps(mm),
  mapCount: mm.mapCount,
  committed: mm.committed,
  totalVm: mm.totalVm,
  dataVm: mm.dataVm,
});

/** /proc/self/maps with the padding before the name collapsed. */
const maps = (mm: MmStruct, start?: number) => procMaps(mm, start).replace(/ {2,}/g, ' ');
const heapLine = (start: number, end: number) =>
  `${start.toString(16)}-${end.toString(16)} rw-p 00000000 00:00 0 [heap]\n`;

describe('brk(2): moving the program break', () => {
  it('grows the heap as one anonymous rw-p VMA, charged to data and the commit charge, and soft-dirty', () => {
    const mm = new MmStruct();
    expect(mm.brk).toBe(B);
    expect(brkSync(mm, B + 2 * P)).toBe(B + 2 * P);
    expect(maps(mm)).toBe(heapLine(B, B + 2 * P));
    // A second growth extends the same VMA (the expand-only merge), it does not add one.
    expect(brkSync(mm, B + 5 * P + 100)).toBe(B + 5 * P + 100);
    expect(mm.brk).toBe(B + 5 * P + 100);
    expect(maps(mm)).toBe(heapLine(B, B + 6 * P));
    expect(mm.mapCount).toBe(1);
    expect([mm.totalVm, mm.dataVm, mm.committed]).toEqual([6, 6, 6]);
    expect(mm.findVma(B)!.vmFlags & VM_SOFTDIRTY).toBe(VM_SOFTDIRTY);
    checkMmInvariants([mm]);
  });

  it('within the same page only the break moves; a smaller break unmaps the pages above it', () => {
    const mm = new MmStruct();
    expect(brkSync(mm, B + 4 * P)).toBe(B + 4 * P);
    expect(brkSync(mm, B + 3 * P + 1)).toBe(B + 3 * P + 1); // still the page ending at B + 4P
    expect(maps(mm)).toBe(heapLine(B, B + 4 * P));
    expect(mm.totalVm).toBe(4);
    expect(brkSync(mm, B + P)).toBe(B + P);
    expect(maps(mm)).toBe(heapLine(B, B + P));
    expect([mm.totalVm, mm.dataVm, mm.committed]).toEqual([1, 1, 1]);
    expect(brkSync(mm, B)).toBe(B);
    expect(maps(mm)).toBe('');
    expect([mm.mapCount, mm.totalVm, mm.committed]).toEqual([0, 0, 0]);
    checkMmInvariants([mm]);
  });

  it.each([
    ['below start_brk', B - P],
    ['above TASK_SIZE', 2 ** 47 + P],
    ['negative', -P],
    ['fractional', B + 0.5],
    ['not a safe integer', 2 ** 53],
  ])('a break %s is refused: the old break is returned and nothing changes', (_name, brk) => {
    const mm = new MmStruct();
    expect(brkSync(mm, B + 2 * P)).toBe(B + 2 * P);
    const before = state(mm);
    expect(brkSync(mm, brk)).toBe(B + 2 * P);
    expect(state(mm)).toEqual(before);
  });

  it('the break may be start_brk itself, and TASK_SIZE exactly when the heap fits below it', () => {
    const probe = new MmStruct();
    const top = probe.taskSize;
    const mm = new MmStruct({ startBrk: top - 4 * P });
    expect(brkSync(mm, top - 4 * P)).toBe(top - 4 * P);
    expect(brkSync(mm, top)).toBe(top);
    expect(maps(mm)).toBe(heapLine(top - 4 * P, top));
    expect(brkSync(mm, top + 1)).toBe(top);
  });

  it('does not grow into the page below another mapping', () => {
    const mm = new MmStruct();
    const next = B + 8 * P;
    const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    expect(mmapSync(mm, { addr: next, len: P, prot: PROT_READ, flags: fixed })).toEqual({
      ok: true,
      value: next,
    });
    // Linux keeps a page between the heap and the next mapping.
    expect(brkSync(mm, next - P)).toBe(next - P);
    const before = state(mm);
    expect(brkSync(mm, next - P + 1)).toBe(next - P);
    expect(brkSync(mm, next)).toBe(next - P);
    expect(state(mm)).toEqual(before);
  });

  it('does not grow to within a stack guard gap of a stack mapping above it', () => {
    const gap = 4 * P;
    const mm = new MmStruct({ stackGuardGap: gap });
    const stack = B + 16 * P;
    expect(
      mmapSync(mm, {
        addr: stack,
        len: 4 * P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN,
      }),
    ).toEqual({ ok: true, value: stack });
    // The stack may grow down by the guard gap: the heap must stay a page below that.
    expect(brkSync(mm, stack - gap - P)).toBe(stack - gap - P);
    expect(brkSync(mm, stack - gap)).toBe(stack - gap - P);
    checkMmInvariants([mm]);
  });

  it('is refused past RLIMIT_AS and past max_map_count, with nothing changed', () => {
    const limited = new MmStruct({ rlimitAs: 3 * P });
    expect(brkSync(limited, B + 3 * P)).toBe(B + 3 * P);
    let before = state(limited);
    expect(brkSync(limited, B + 4 * P)).toBe(B + 3 * P);
    expect(state(limited)).toEqual(before);

    // max_map_count: do_brk_flags refuses when the mm already has more mappings than the limit.
    const mm = new MmStruct({ maxMapCount: 2 });
    const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    for (const [i, prot] of [PROT_READ, PROT_READ | PROT_WRITE].entries()) {
      const addr = 0x100000000000 + 2 * i * P;
      expect(mmapSync(mm, { addr, len: P, prot, flags: fixed })).toEqual({ ok: true, value: addr });
    }
    expect(mm.mapCount).toBe(2);
    expect(brkSync(mm, B + P)).toBe(B + P); // at the limit, a new VMA is still allowed (Linux tests `>`)
    expect(mm.mapCount).toBe(3);
    before = state(mm);
    expect(brkSync(mm, B + 2 * P)).toBe(B + P); // now past it, even an expansion is refused
    expect(state(mm)).toEqual(before);
  });

  it('a heap whose pages were unmapped grows as a new VMA and cannot shrink below the hole', () => {
    const mm = new MmStruct();
    expect(brkSync(mm, B + 4 * P)).toBe(B + 4 * P);
    expect(munmapSync(mm, B, 4 * P)).toEqual({ ok: true, value: 0 });
    // Shrinking finds no heap VMA below the old break: the break stays.
    expect(brkSync(mm, B + 2 * P)).toBe(B + 4 * P);
    // Growing from the old break maps only the new pages.
    expect(brkSync(mm, B + 6 * P)).toBe(B + 6 * P);
    expect(maps(mm)).toBe(heapLine(B + 4 * P, B + 6 * P));
    expect(mm.totalVm).toBe(2);
    checkMmInvariants([mm]);
  });

  it('a heap whose top was unmapped grows as a new VMA above the hole, not by stretching the heap over it', () => {
    const mm = new MmStruct();
    expect(brkSync(mm, B + 4 * P)).toBe(B + 4 * P);
    expect(munmapSync(mm, B + 2 * P, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(brkSync(mm, B + 6 * P)).toBe(B + 6 * P);
    expect(maps(mm)).toBe(heapLine(B, B + 2 * P) + heapLine(B + 4 * P, B + 6 * P));
    expect(mm.totalVm).toBe(4);
    checkMmInvariants([mm]);
  });

  it('does not shrink when no heap page lies below the old break (a mapping starts at or above it)', () => {
    for (const at of [4, 8]) {
      const mm = new MmStruct();
      expect(brkSync(mm, B + 4 * P)).toBe(B + 4 * P);
      expect(munmapSync(mm, B + 2 * P, 2 * P)).toEqual({ ok: true, value: 0 });
      const addr = B + at * P;
      const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
      expect(mmapSync(mm, { addr, len: P, prot: PROT_READ, flags: fixed })).toEqual({
        ok: true,
        value: addr,
      });
      const before = state(mm);
      // Linux: vma_find(newbrk, oldbrk) finds nothing below oldbrk, so brk keeps the old break.
      expect(brkSync(mm, B + 3 * P)).toBe(B + 4 * P);
      expect(state(mm)).toEqual(before);
    }
  });

  it('a shrink that would split a mapping past max_map_count is refused with the old break', () => {
    // The heap and an adjacent anonymous mapping above it merge into one VMA; shrinking the break then unmaps
    // a range in its middle, which needs one more VMA than max_map_count allows.
    const mm = new MmStruct({ maxMapCount: 1 });
    expect(brkSync(mm, B + 4 * P)).toBe(B + 4 * P);
    const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    expect(mmapSync(mm, { addr: B + 4 * P, len: 2 * P, prot: PROT_READ | PROT_WRITE, flags: fixed })).toEqual(
      {
        ok: true,
        value: B + 4 * P,
      },
    );
    expect(mm.mapCount).toBe(1);
    const before = state(mm);
    expect(brkSync(mm, B + 2 * P)).toBe(B + 4 * P);
    expect(state(mm)).toEqual(before);
  });

  it('a mapping that ends at start_brk is not taken for the heap', () => {
    const mm = new MmStruct();
    const below = B - 2 * P;
    expect(
      mmapSync(mm, {
        addr: below,
        len: 2 * P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      }),
    ).toEqual({ ok: true, value: below });
    expect(brkSync(mm, B + P)).toBe(B + P);
    // Two VMAs: the mapping below keeps its bounds; the heap starts at start_brk.
    expect(mm.mapCount).toBe(2);
    expect(maps(mm, B)).toBe(heapLine(B, B + P));
    expect(mm.findVma(below)!.vmEnd).toBe(B);
  });

  it('sysBrk takes the mmap lock for writing and releases it', () => {
    const mm = new MmStruct();
    expect(runSync(sysBrk(mm, B + P))).toBe(B + P);
    expect(runSync(sysBrk(mm, B + 2 * P))).toBe(B + 2 * P);
    expect(maps(mm)).toBe(heapLine(B, B + 2 * P));
  });
});
