import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { expandDownwards } from './expand-stack.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { mapsEntries, procMaps } from './proc-maps.js';
import { DEFAULT_STACK_SIZE, setupStack } from './setup-stack.js';
import { mmapSync } from './sync-api.js';
import { withWriteLock } from './test-support/mmap-lock.js';
import type { VmArea } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  VM_SOFTDIRTY,
  VM_STACK_FLAGS,
} from './vm-flags.js';

const P = 4096;
const TOP = 0x7ffffffff000;

const setup = (mm: MmStruct, top?: number, size?: number) =>
  withWriteLock(mm, () => setupStack(mm, top, size));

describe('setup_arg_pages: the initial stack', () => {
  it('creates a [stack] VMA that grows down and refuses overlaps', () => {
    const mm = new MmStruct();
    const stack = setup(mm);
    if (typeof stack === 'number') throw new Error(`setupStack failed ${stack}`);
    expect(mapsEntries(mm)).toEqual([
      {
        start: 0x7ffffffff000 - 132 * 1024,
        end: 0x7ffffffff000,
        perms: 'rw-p',
        offset: 0,
        devMajor: 0,
        devMinor: 0,
        ino: 0,
        name: '[stack]',
      },
    ]);
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, stack.vmStart - 3 * P))).toBe(0);
    expect(mm.vmaLookup(stack.vmStart)?.perms()).toBe('rw-p');
    expect(setup(mm)).toBe(Errno.EEXIST);
    expect(setup(mm, 0x7ffffffff001)).toBe(Errno.EINVAL);
  });

  it('has VM_STACK_FLAGS, the linear page offset, the accounting and start_stack of a stack', () => {
    const mm = new MmStruct();
    const stack = setup(mm) as VmArea;
    expect(DEFAULT_STACK_SIZE).toBe(132 * 1024);
    const start = TOP - DEFAULT_STACK_SIZE;
    expect([stack.vmStart, stack.vmEnd]).toEqual([start, TOP]);
    expect(stack.vmFlags).toBe(VM_STACK_FLAGS | VM_SOFTDIRTY);
    expect(stack.vmPgoff).toBe(start / P);
    expect(stack.vmMm).toBe(mm);
    expect(mm.vmaLookup(start)).toBe(stack);
    expect(mm.mapCount).toBe(1);
    expect([mm.totalVm, mm.stackVm, mm.dataVm]).toEqual([33, 33, 0]);
    expect(mm.startStack).toBe(TOP - 8);
    checkMmInvariants([mm]);
  });

  it('takes a stack top and size', () => {
    const mm = new MmStruct();
    const stack = setup(mm, 0x7f0000000000, 4 * P) as VmArea;
    expect([stack.vmStart, stack.vmEnd]).toEqual([0x7f0000000000 - 4 * P, 0x7f0000000000]);
    expect(mm.startStack).toBe(0x7f0000000000 - 8);
    expect(mm.totalVm).toBe(4);
    // The whole space below the top is allowed.
    const low = new MmStruct({ mmapMinAddr: 0, capSysRawio: true });
    const all = setup(low, 8 * P, 8 * P) as VmArea;
    expect([all.vmStart, all.vmEnd]).toEqual([0, 8 * P]);
  });

  it('refuses unaligned or empty sizes, unaligned tops, and a stack past TASK_SIZE or below 0 with EINVAL', () => {
    const mm = new MmStruct();
    for (const [top, size] of [
      [TOP - 1, 4 * P],
      [TOP - P / 2, 4 * P],
      [TOP, 4 * P + 8],
      [TOP, 0],
      [TOP, -P],
      [TOP + P, 4 * P],
      [4 * P, 5 * P],
    ] as const) {
      expect(setup(mm, top, size), `${top} ${size}`).toBe(Errno.EINVAL);
    }
    expect(mm.mapCount).toBe(0);
    expect(mm.totalVm).toBe(0);
    expect(setup(mm, TOP, 4 * P)).not.toBeTypeOf('number');
  });

  it('refuses EEXIST only when a mapping intersects the range', () => {
    const place = (mm: MmStruct, addr: number) =>
      expect(
        mmapSync(mm, { addr, len: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED }),
      ).toEqual({ ok: true, value: addr });
    const T = 0x7f0000000000;
    for (const [addr, ok] of [
      [T - 5 * P, true], // ends where the stack starts
      [T - 4 * P, false],
      [T - P, false],
      [T, true], // starts at the top
    ] as const) {
      const mm = new MmStruct();
      place(mm, addr);
      const before = procMaps(mm);
      const r = setup(mm, T, 4 * P);
      if (ok) expect(r).not.toBeTypeOf('number');
      else {
        expect(r).toBe(Errno.EEXIST);
        expect(procMaps(mm)).toBe(before);
        expect(mm.totalVm).toBe(1);
      }
    }
  });
});
