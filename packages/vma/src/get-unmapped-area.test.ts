import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import {
  getUnmappedArea,
  unmappedArea,
  unmappedAreaTopdown,
  unmappedAreaTopdownLinear,
  vmStartGap,
} from './get-unmapped-area.js';
import { type MmConfig, MmStruct } from './mm-struct.js';
import { mmapSync, munmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const BASE = 0x10000;

describe('the top-down free-area search', () => {
  it('finds the same address through the tree gap summaries as by walking every VMA', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.nat(600),
            n: fc.integer({ min: 1, max: 5 }),
            stack: fc.boolean(),
            prot: fc.nat(3),
          }),
          { maxLength: 120 },
        ),
        fc.array(fc.nat(400), { maxLength: 40 }),
        fc.array(fc.record({ len: fc.integer({ min: 1, max: 40 }), lo: fc.nat(600), span: fc.nat(700) }), {
          minLength: 1,
          maxLength: 30,
        }),
        (maps, unmaps, queries) => {
          const mm = new MmStruct({ stackGuardGap: 3 * P });
          for (const m of maps) {
            mmapSync(mm, {
              addr: BASE + m.page * P,
              len: m.n * P,
              prot: m.prot === 0 ? PROT_READ : PROT_READ | PROT_WRITE,
              flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (m.stack ? MAP_GROWSDOWN : 0),
            });
          }
          for (const u of unmaps) munmapSync(mm, BASE + u * P, 2 * P);
          for (const q of queries) {
            const lo = BASE + q.lo * P;
            const hi = lo + q.span * P;
            const fast = unmappedAreaTopdown(mm, q.len * P, lo, hi);
            const slow = unmappedAreaTopdownLinear(mm, q.len * P, lo, hi);
            expect(fast, JSON.stringify(q)).toBe(slow);
          }
          expect(mm.tree.validate()).toEqual([]);
        },
      ),
      {
        numRuns: Number(process.env.SPF_PROPERTY_RUNS ?? 200),
        seed: Number(process.env.SPF_PROPERTY_SEED ?? 20251125),
      },
    );
  });
});

const MiB = 1024 * 1024;
const PMD = 2 * MiB;
/** DEFAULT_MMAP_BASE: 128 MiB below the 47-bit TASK_SIZE, not 2 MiB aligned. */
const BASE_DEFAULT = 0x7ffffffff000 - 128 * MiB;
const WINDOW = 0x7ffffffff000;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

/** Maps [addr, addr+pages) fixed (a stack with MAP_GROWSDOWN), asserting success. */
function place(mm: MmStruct, addr: number, pages: number, extra = 0): void {
  const r = mmapSync(mm, {
    addr,
    len: pages * P,
    prot: PROT_READ | PROT_WRITE,
    flags: PRIV | MAP_FIXED | extra,
  });
  expect(r).toEqual({ ok: true, value: addr });
}

const gua = (mm: MmStruct, addr: number, len: number, flags = PRIV, file = false) =>
  getUnmappedArea(mm, addr, len, flags, { file });

describe('get_unmapped_area: MAP_FIXED and the final checks', () => {
  const mm = new MmStruct();
  it('returns a fixed address inside [mmap_min_addr, TASK_SIZE) as it is', () => {
    expect(gua(mm, 0x10000, P, PRIV | MAP_FIXED)).toEqual({ addr: 0x10000 });
    expect(gua(mm, mm.taskSize - P, P, PRIV | MAP_FIXED)).toEqual({ addr: mm.taskSize - P });
    expect(gua(mm, 0, mm.taskSize, PRIV | MAP_FIXED, true)).toEqual({ errno: Errno.EPERM });
  });
  it('refuses a length above TASK_SIZE and a range that ends past it with ENOMEM', () => {
    expect(gua(mm, 0x10000, mm.taskSize + P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.ENOMEM });
    expect(gua(mm, 0, mm.taskSize + P, PRIV)).toEqual({ errno: Errno.ENOMEM });
    expect(gua(mm, mm.taskSize - P, 2 * P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.ENOMEM });
    expect(gua(mm, mm.taskSize, P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.ENOMEM });
  });
  it('refuses an unaligned fixed address with EINVAL', () => {
    expect(gua(mm, 0x10000 + 1, P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.EINVAL });
    expect(gua(mm, 0x10000 + P / 2, P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.EINVAL });
  });
  it('refuses an address below mmap_min_addr with EPERM unless the mm has CAP_SYS_RAWIO', () => {
    expect(gua(mm, 0x10000 - P, P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.EPERM });
    expect(gua(mm, 0, P, PRIV | MAP_FIXED)).toEqual({ errno: Errno.EPERM });
    const raw = new MmStruct({ capSysRawio: true });
    expect(gua(raw, 0, P, PRIV | MAP_FIXED)).toEqual({ addr: 0 });
    expect(gua(raw, 0x10000 - P, P, PRIV | MAP_FIXED)).toEqual({ addr: 0x10000 - P });
  });
});

describe('get_unmapped_area: the hint', () => {
  it('is used, rounded down to a page, when the range is free', () => {
    const mm = new MmStruct();
    const H = 0x2000_0000;
    expect(gua(mm, H, P)).toEqual({ addr: H });
    expect(gua(mm, H + 5, P)).toEqual({ addr: H });
    expect(gua(mm, H + P - 1, 3 * P)).toEqual({ addr: H });
    // A hint is never aligned for THP, even for a 2 MiB length.
    expect(gua(mm, H + P, PMD)).toEqual({ addr: H + P });
  });
  it('is used when the range ends exactly where a VMA starts, and not when it overlaps one', () => {
    const mm = new MmStruct();
    const H = 0x2000_0000;
    place(mm, H + 2 * P, 2);
    expect(gua(mm, H, 2 * P)).toEqual({ addr: H });
    expect(gua(mm, H, 3 * P)).toEqual({ addr: BASE_DEFAULT - 3 * P });
    expect(gua(mm, H + 3 * P, P)).toEqual({ addr: BASE_DEFAULT - P }); // inside the VMA
    expect(gua(mm, H + 4 * P, P)).toEqual({ addr: H + 4 * P }); // just above it
  });
  it("is not used when the range reaches into a stack's guard gap", () => {
    const mm = new MmStruct({ stackGuardGap: 4 * P });
    const S = 0x2000_0000;
    place(mm, S, 2, MAP_GROWSDOWN);
    expect(gua(mm, S - 5 * P, P)).toEqual({ addr: S - 5 * P }); // ends at the gap
    expect(gua(mm, S - 4 * P, P)).toEqual({ addr: BASE_DEFAULT - P });
    expect(gua(mm, S - 2 * P, P)).toEqual({ addr: BASE_DEFAULT - P });
  });
  it('is not used when the range would end past TASK_SIZE', () => {
    const small = new MmStruct({ taskSize: 16 * MiB, mmapBase: 8 * MiB });
    expect(gua(small, 16 * MiB - 2 * P, 2 * P)).toEqual({ addr: 16 * MiB - 2 * P });
    expect(gua(small, 16 * MiB - P, 2 * P)).toEqual({ addr: 8 * MiB - 2 * P });
    const mm = new MmStruct();
    expect(gua(mm, mm.taskSize - P, P)).toEqual({ addr: mm.taskSize - P });
    expect(gua(mm, mm.taskSize - P, 2 * P)).toEqual({ addr: BASE_DEFAULT - 2 * P });
  });
  it('is not used when the range crosses the 47-bit window (LA57), but is when it lies wholly above it', () => {
    const mm = new MmStruct({ taskSize: 2 ** 52, mmapBase: BASE_DEFAULT });
    expect(gua(mm, WINDOW - P, 2 * P)).toEqual({ addr: BASE_DEFAULT - 2 * P });
    expect(gua(mm, WINDOW - 2 * P, 2 * P)).toEqual({ addr: WINDOW - 2 * P });
    expect(gua(mm, WINDOW, 2 * P)).toEqual({ addr: BASE_DEFAULT - 2 * P }); // DEFAULT_MAP_WINDOW is below 2^47
    expect(gua(mm, WINDOW + P, 2 * P)).toEqual({ addr: WINDOW + P });
  });
});

describe('get_unmapped_area: the top-down search below mmap_base', () => {
  it('returns the highest free range below mmap_base', () => {
    const mm = new MmStruct();
    expect(gua(mm, 0, P)).toEqual({ addr: BASE_DEFAULT - P });
    place(mm, BASE_DEFAULT - 2 * P, 2);
    expect(gua(mm, 0, P)).toEqual({ addr: BASE_DEFAULT - 3 * P });
    expect(gua(mm, 0, P, MAP_SHARED | MAP_ANONYMOUS)).toEqual({ addr: BASE_DEFAULT - 3 * P });
  });
  it('keeps the stack guard gap below a VM_GROWSDOWN VMA, and only below one', () => {
    const mm = new MmStruct({ stackGuardGap: 8 * P });
    place(mm, BASE_DEFAULT - 2 * P, 2, MAP_GROWSDOWN);
    expect(gua(mm, 0, P)).toEqual({ addr: BASE_DEFAULT - 11 * P });
    const plain = new MmStruct({ stackGuardGap: 8 * P });
    place(plain, BASE_DEFAULT - 2 * P, 2);
    expect(gua(plain, 0, P)).toEqual({ addr: BASE_DEFAULT - 3 * P });
  });
  it('aligns a private anonymous request of a multiple of 2 MiB to 2 MiB (THP)', () => {
    const mm = new MmStruct();
    const top = Math.floor((BASE_DEFAULT - PMD) / PMD) * PMD;
    expect(gua(mm, 0, PMD)).toEqual({ addr: top });
    expect(gua(mm, 0, 2 * PMD)).toEqual({ addr: Math.floor((BASE_DEFAULT - 2 * PMD) / PMD) * PMD });
    // With mmap_base on a 2 MiB boundary, the padded area's base is aligned already.
    const aligned = new MmStruct({ mmapBase: 0x7f0000000000 });
    expect(gua(aligned, 0, PMD)).toEqual({ addr: 0x7f0000000000 - PMD });
    // Not aligned: a shared mapping, a file, a length that is not a multiple of 2 MiB.
    expect(gua(mm, 0, PMD, MAP_SHARED | MAP_ANONYMOUS)).toEqual({ addr: BASE_DEFAULT - PMD });
    expect(gua(mm, 0, PMD, PRIV, true)).toEqual({ addr: BASE_DEFAULT - PMD });
    expect(gua(mm, 0, PMD + P)).toEqual({ addr: BASE_DEFAULT - PMD - P });
    expect(gua(mm, 0, PMD / 2)).toEqual({ addr: BASE_DEFAULT - PMD / 2 });
  });
  it('falls back to an unaligned address when the padded THP request does not fit', () => {
    const cfg: MmConfig = { taskSize: 0x210000, mmapBase: 0x210000 };
    const mm = new MmStruct(cfg);
    // Only [mmap_min_addr, mmap_base) = [0x10000, 0x210000), exactly 2 MiB, is free.
    expect(gua(mm, 0, PMD)).toEqual({ addr: 0x10000 });
  });
  it('starts the bottom-up fallback at a third of TASK_SIZE, rounded up to a page, not lower', () => {
    const T = 16 * MiB;
    const mm = new MmStruct({ taskSize: T, mmapBase: 2 * MiB });
    place(mm, 0x10000, (2 * MiB - 0x10000) / P);
    expect(gua(mm, 0, P)).toEqual({ addr: 0x556000 });
    expect(Math.ceil(T / 3 / P) * P).toBe(0x556000);
  });
  it('falls back to a bottom-up search from a third of TASK_SIZE when nothing is free below mmap_base', () => {
    const T = 16 * MiB;
    const mm = new MmStruct({ taskSize: T, mmapBase: 8 * MiB });
    place(mm, 0x10000, (8 * MiB - 0x10000) / P);
    expect(gua(mm, 0, P)).toEqual({ addr: 8 * MiB });
    place(mm, 8 * MiB, 1);
    expect(gua(mm, 0, P)).toEqual({ addr: 8 * MiB + P });
    // Nothing free anywhere: ENOMEM.
    place(mm, 8 * MiB + P, (8 * MiB - P) / P);
    expect(gua(mm, 0, P)).toEqual({ errno: Errno.ENOMEM });
    // A hole below mmap_base is found top-down first, even below the legacy base.
    expect(munmapSync(mm, 0x500000, 4 * P)).toEqual({ ok: true, value: 0 });
    expect(Math.ceil(T / 3 / P) * P).toBeGreaterThan(0x500000 + 4 * P);
    expect(gua(mm, 0, 4 * P)).toEqual({ addr: 0x500000 });
    expect(gua(mm, 0, 5 * P)).toEqual({ errno: Errno.ENOMEM });
  });
});

describe('the search primitives', () => {
  it('vm_start_gap: a stack reserves the guard gap below it, clamped at 0', () => {
    const mm = new MmStruct({ stackGuardGap: 16 * P });
    place(mm, 0x100000, 1, MAP_GROWSDOWN);
    place(mm, 0x200000, 1);
    const stack = mm.findVma(0x100000)!;
    expect(vmStartGap(mm, stack)).toBe(0x100000 - 16 * P);
    expect(vmStartGap(mm, mm.findVma(0x200000)!)).toBe(0x200000);
    const low = new MmStruct({ stackGuardGap: 0x200000, capSysRawio: true, mmapMinAddr: 0 });
    place(low, 0x10000, 1, MAP_GROWSDOWN);
    expect(vmStartGap(low, low.findVma(0x10000)!)).toBe(0);
  });
  it('unmapped_area: the lowest free range inside [low, high), never below mmap_min_addr', () => {
    const mm = new MmStruct({ stackGuardGap: 2 * P });
    place(mm, 0x100000, 2);
    place(mm, 0x100000 + 5 * P, 1, MAP_GROWSDOWN);
    place(mm, 0x100000 + 8 * P, 1);
    expect(unmappedArea(mm, P, 0, 0x100000)).toBe(0x10000);
    expect(unmappedArea(mm, P, 0x100000, 0x200000)).toBe(0x100000 + 2 * P);
    // The stack's guard gap leaves one page below it; the next hole is above it.
    expect(unmappedArea(mm, 2 * P, 0x100000, 0x200000)).toBe(0x100000 + 6 * P);
    expect(unmappedArea(mm, 3 * P, 0x100000, 0x200000)).toBe(0x100000 + 9 * P);
    expect(unmappedArea(mm, P, 0x100000 + P, 0x100000 + 3 * P)).toBe(0x100000 + 2 * P);
    // The free range must end by high.
    expect(unmappedArea(mm, 2 * P, 0x100000 + 6 * P, 0x100000 + 8 * P)).toBe(0x100000 + 6 * P);
    expect(unmappedArea(mm, 2 * P, 0x100000 + 6 * P, 0x100000 + 7 * P)).toBe(-1);
    expect(unmappedArea(mm, 2 * P, 0x100000 + 3 * P, 0x100000 + 7 * P)).toBe(-1);
    expect(unmappedArea(mm, P, 0x100000, 0x100000 + 2 * P)).toBe(-1);
    expect(unmappedArea(mm, 4 * P, 0x100000 + 9 * P, 0x100000 + 12 * P)).toBe(-1);
  });
  it('unmapped_area_topdown: the highest free range inside [low, high), and none when low >= high', () => {
    const mm = new MmStruct({ stackGuardGap: 2 * P });
    place(mm, 0x100000, 2);
    place(mm, 0x100000 + 6 * P, 1, MAP_GROWSDOWN);
    for (const f of [unmappedAreaTopdown, unmappedAreaTopdownLinear]) {
      expect(f(mm, P, 0x100000, 0x100000 + 8 * P)).toBe(0x100000 + 7 * P);
      expect(f(mm, P, 0x100000, 0x100000 + 7 * P)).toBe(0x100000 + 3 * P); // below the guard gap
      expect(f(mm, 2 * P, 0x100000, 0x100000 + 7 * P)).toBe(0x100000 + 2 * P);
      expect(f(mm, 3 * P, 0x100000, 0x100000 + 7 * P)).toBe(-1);
      expect(f(mm, P, 0, 0x100000)).toBe(0x100000 - P);
      expect(f(mm, P, 0, 0x10000 + P)).toBe(0x10000); // mmap_min_addr is the floor
      expect(f(mm, P, 0, 0x10000)).toBe(-1);
    }
    expect(unmappedAreaTopdown(mm, P, 0x200000, 0x100000)).toBe(-1);
    expect(unmappedAreaTopdown(mm, P, 0x100000, 0x100000)).toBe(-1);
  });
});
