import { type Kernel, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { mmget, mmput } from './exit-mmap.js';
import { expandDownwards } from './expand-stack.js';
import { mapsEntries } from './proc-maps.js';
import { setupStack } from './setup-stack.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { mmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

function withWriteLock<T>(mm: MmStruct, body: () => Kernel<T>): T {
  return runSync(
    (function* () {
      yield* mm.mmapWriteLock();
      try {
        return yield* body();
      } finally {
        yield* mm.mmapWriteUnlock();
      }
    })(),
  );
}

describe('stack expansion (expand_downwards)', () => {
  it('grows a VM_GROWSDOWN VMA down, keeps the guard gap, and refuses non-stacks', () => {
    const mm = new MmStruct({ stackGuardGap: 4 * P });
    mmapSync(mm, { addr: A, len: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
    mmapSync(mm, {
      addr: A + 20 * P,
      len: 2 * P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_GROWSDOWN,
    });
    const stack = mm.vmaLookup(A + 20 * P);
    const plain = mm.vmaLookup(A);
    if (!stack || !plain) throw new Error('setup');
    const pgoff = stack.vmPgoff;
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 10 * P + 5))).toBe(0);
    expect([stack.vmStart, stack.vmPgoff]).toEqual([A + 10 * P, pgoff - 10]);
    expect(stack.anonVma).not.toBeNull();
    // Within the guard gap (4 pages) of the VMA below: ENOMEM.
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 3 * P))).toBe(Errno.ENOMEM);
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 5 * P))).toBe(0);
    expect(withWriteLock(mm, () => expandDownwards(mm, plain, A - P))).toBe(Errno.EFAULT);
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 4 * P, 16 * P))).toBe(Errno.ENOMEM);
    checkMmInvariants([mm]);
  });
});

describe('the initial stack (setup_arg_pages)', () => {
  it('creates a [stack] VMA that grows down and refuses overlaps', () => {
    const mm = new MmStruct();
    const stack = withWriteLock(mm, () => setupStack(mm));
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
    expect(withWriteLock(mm, () => setupStack(mm))).toBe(Errno.EEXIST);
    expect(withWriteLock(mm, () => setupStack(mm, 0x7ffffffff001))).toBe(Errno.EINVAL);
  });
});

describe('exit_mmap and mmput', () => {
  it('the last mmput releases every page and page table', () => {
    const { mm, mem } = makeSystem();
    const free0 = mem.freeCount;
    mmapSync(mm, { addr: A, len: 8 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
    mmapSync(mm, {
      addr: 0x7f0000000000,
      len: 2 * P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    touch(mm, A, 8 * P);
    touch(mm, 0x7f0000000000, 2 * P);
    runSync(mmget(mm));
    expect(runSync(mmput(mm))).toBe(false);
    expect(mm.mapCount).toBe(2);
    expect(runSync(mmput(mm))).toBe(true);
    expect(mm.mapCount).toBe(0);
    expect(mm.rss.every((x) => x === 0)).toBe(true);
    // Every page and page table is free again, the PML4 (allocated with the mm, before free0) included.
    expect(mem.freeCount).toBe(free0 + 1);
    expect(mm.pgd.tables.slice(1, 5)).toEqual([0, 0, 0, 0]);
  });
});
