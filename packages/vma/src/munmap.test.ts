import { describe, expect, it } from 'vitest';
import { runSync } from '@spf/machine';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { doMunmap, sysMunmap, unmapRegion, validArg } from './munmap.js';
import type { MmapFile } from './mmap.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const OK = { ok: true, value: 0 };
const err = (errno: number) => ({ ok: false, errno });

function map(mm: MmStruct, addr: number, pages: number, prot = RW) {
  expect(mmapSync(mm, { addr, len: pages * P, prot, flags: PRIV })).toEqual({ ok: true, value: addr });
}

/** What a refused call must leave unchanged. */
const state = (mm: MmStruct) => ({
  maps: procMaps(mm),
  mapCount: mm.mapCount,
  committed: mm.committed,
  totalVm: mm.totalVm,
  dataVm: mm.dataVm,
});

describe('validArg: a syscall argument is an unsigned long', () => {
  it('accepts 0 and safe non-negative integers, refuses negatives, fractions, NaN and unsafe integers', () => {
    expect([0, 1, 2 ** 53 - 1].map(validArg)).toEqual([true, true, true]);
    expect([-1, 0.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY].map(validArg)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('do_vmi_munmap: argument checks (nothing changes on failure)', () => {
  it.each([
    ['an unaligned start', A + 1, P],
    ['a negative start', -P, P],
    ['a fractional len', A, 0.5],
    ['a zero len', A, 0],
    ['a start above TASK_SIZE', 2 ** 47, P],
    ['a range ending above TASK_SIZE', A, 2 ** 47],
  ])('%s is EINVAL', (_name, start, len) => {
    const mm = new MmStruct();
    map(mm, A, 4);
    const before = state(mm);
    expect(munmapSync(mm, start, len)).toEqual(err(Errno.EINVAL));
    expect(state(mm)).toEqual(before);
  });

  it('the range may end exactly at TASK_SIZE, not one byte beyond', () => {
    const mm = new MmStruct();
    const top = mm.taskSize - 2 * P;
    map(mm, top, 2);
    expect(munmapSync(mm, top, 2 * P + 1)).toEqual(err(Errno.EINVAL));
    expect(munmapSync(mm, mm.taskSize, P)).toEqual(err(Errno.EINVAL));
    expect(mm.mapCount).toBe(1);
    expect(munmapSync(mm, top, 2 * P)).toEqual(OK);
    expect(mm.mapCount).toBe(0);
    // TASK_SIZE itself with a zero length is still a zero length.
    expect(munmapSync(mm, mm.taskSize, 0)).toEqual(err(Errno.EINVAL));
  });

  it('a smaller TASK_SIZE (config) moves the limit', () => {
    const mm = new MmStruct({ taskSize: A + 4 * P });
    map(mm, A, 4);
    expect(munmapSync(mm, A, 5 * P)).toEqual(err(Errno.EINVAL));
    expect(munmapSync(mm, A, 4 * P)).toEqual(OK);
  });

  it('unmapping a hole succeeds and changes nothing, also right below or above a VMA', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    const before = state(mm);
    expect(munmapSync(mm, A - 4 * P, 4 * P)).toEqual(OK);
    expect(munmapSync(mm, A + 2 * P, 4 * P)).toEqual(OK);
    expect(munmapSync(mm, 0x1000, P)).toEqual(OK);
    expect(state(mm)).toEqual(before);
  });

  it('rounds len up to whole pages', () => {
    const mm = new MmStruct();
    map(mm, A, 3);
    expect(munmapSync(mm, A, P + 1)).toEqual(OK);
    expect(procMaps(mm)).toBe('100000002000-100000003000 rw-p 00000000 00:00 0 \n');
    expect([mm.totalVm, mm.dataVm, mm.committed]).toEqual([1, 1, 1]);
  });
});

describe('do_vmi_align_munmap: splitting, detaching and max_map_count', () => {
  it('unmaps the middle of a VMA into two, and the accounting follows', () => {
    const mm = new MmStruct();
    map(mm, A, 4);
    expect(munmapSync(mm, A + P, 2 * P)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      '100000000000-100000001000 rw-p 00000000 00:00 0 \n100000003000-100000004000 rw-p 00000000 00:00 0 \n',
    );
    expect([mm.mapCount, mm.totalVm, mm.dataVm, mm.committed]).toEqual([2, 2, 2, 2]);
    checkMmInvariants([mm]);
  });

  it('unmaps several VMAs and the holes between them in one call', () => {
    const mm = new MmStruct();
    map(mm, A, 2, RW);
    map(mm, A + 2 * P, 2, PROT_READ);
    map(mm, A + 6 * P, 2, PROT_READ | PROT_EXEC);
    map(mm, A + 9 * P, 1, RW);
    expect(mm.mapCount).toBe(4);
    expect(munmapSync(mm, A + P, 6 * P)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      [
        '100000000000-100000001000 rw-p 00000000 00:00 0 ',
        '100000007000-100000008000 r-xp 00000000 00:00 0 ',
        '100000009000-10000000a000 rw-p 00000000 00:00 0 ',
        '',
      ].join('\n'),
    );
    expect([mm.mapCount, mm.totalVm, mm.execVm]).toEqual([3, 3, 1]);
    checkMmInvariants([mm]);
  });

  it('at max_map_count, a hole punched in the middle is ENOMEM and changes nothing; head and tail cuts work', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    map(mm, A, 4);
    map(mm, A + 8 * P, 4, PROT_READ);
    expect(mm.mapCount).toBe(2);
    const before = state(mm);
    expect(munmapSync(mm, A + P, P)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    // Cutting the tail or the head never adds a VMA.
    expect(munmapSync(mm, A + 3 * P, P)).toEqual(OK);
    expect(munmapSync(mm, A + 8 * P, P)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      '100000000000-100000003000 rw-p 00000000 00:00 0 \n100000009000-10000000c000 r--p 00000000 00:00 0 \n',
    );
    // Below the limit, the middle hole is allowed.
    const mm2 = new MmStruct({ maxMapCount: 2 });
    map(mm2, A, 4);
    expect(munmapSync(mm2, A + P, P)).toEqual(OK);
    expect(mm2.mapCount).toBe(2);
  });

  it('zaps the PTEs and frees the page tables only the unmapped range used', () => {
    const { mem, mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    const free = mem.freeCount;
    expect(mm.pgd.leaf(A)).not.toBeNull();
    expect(munmapSync(mm, A, 2 * P)).toEqual(OK);
    expect(mm.pgd.leaf(A)).toBeNull();
    // Two data pages, the PTE table, the PMD table and the PUD table are freed.
    expect(mem.freeCount).toBe(free + 5);
  });

  it('keeps the page table a neighbouring VMA still uses, below (floor) and above (ceiling)', () => {
    const { mm } = makeSystem();
    map(mm, A, 1, RW);
    map(mm, A + P, 1, PROT_READ);
    map(mm, A + 2 * P, 1, RW | PROT_EXEC);
    touch(mm, A);
    touch(mm, A + 2 * P);
    expect(munmapSync(mm, A + P, P)).toEqual(OK);
    expect(mm.pgd.leaf(A)).not.toBeNull();
    expect(mm.pgd.leaf(A + 2 * P)).not.toBeNull();
    expect(munmapSync(mm, A, P)).toEqual(OK);
    expect(mm.pgd.leaf(A + 2 * P)).not.toBeNull();
    checkMmInvariants([mm]);
  });

  it('doMunmap is the unlocked body used under a held mmap lock', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const r = runSync(
      (function* () {
        yield* mm.mmapWriteLock();
        const res = yield* doMunmap(mm, A, P);
        yield* mm.mmapWriteUnlock();
        return res;
      })(),
    );
    expect(r).toEqual(OK);
    expect(mm.mapCount).toBe(0);
  });
});

describe('munmap: splits refused by vm_ops->may_split, closing, the page_table_lock option, the lock', () => {
  function fileWith(maySplit: boolean, closed: number[]): MmapFile {
    return {
      file: { path: '/dev/special', devMajor: 8, devMinor: 1, ino: 9 },
      ops: { maySplit: () => (maySplit ? 0 : -22), close: (v) => closed.push(v.vmStart) },
    };
  }

  it('a VMA whose may_split refuses cannot be cut at the start or at the end of the range: EINVAL, no change', () => {
    const mm = new MmStruct();
    const file = fileWith(false, []);
    expect(
      mmapSync(mm, { addr: A, len: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file }).ok,
    ).toBe(true);
    const before = state(mm);
    expect(munmapSync(mm, A + P, P)).toEqual(err(Errno.EINVAL));
    expect(munmapSync(mm, A, P)).toEqual(err(Errno.EINVAL));
    expect(state(mm)).toEqual(before);
    expect(munmapSync(mm, A, 4 * P)).toEqual(OK);
    expect(mm.mapCount).toBe(0);
  });

  it('a refused split at the start of the range fails the whole call, even when no other split is needed', () => {
    const mm = new MmStruct();
    const file: MmapFile = {
      file: { path: '/dev/special', devMajor: 8, devMinor: 1, ino: 9 },
      ops: { maySplit: (_v, addr) => (addr === A + P ? -22 : 0) },
    };
    expect(
      mmapSync(mm, { addr: A, len: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file }).ok,
    ).toBe(true);
    const before = state(mm);
    expect(munmapSync(mm, A + P, 3 * P)).toEqual(err(Errno.EINVAL));
    expect(state(mm)).toEqual(before);
    expect(munmapSync(mm, A + 2 * P, 2 * P)).toEqual(OK);
    expect(mm.totalVm).toBe(2);
  });

  it('closes each removed VMA (vm_ops->close) once, and the cut-off part is a new VMA, the old one detached', () => {
    const mm = new MmStruct();
    const closed: number[] = [];
    const file = fileWith(true, closed);
    expect(
      mmapSync(mm, { addr: A, len: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file }).ok,
    ).toBe(true);
    const original = mm.findVma(A);
    expect(munmapSync(mm, A + 2 * P, 2 * P)).toEqual(OK);
    expect(closed).toEqual([A + 2 * P]);
    // __split_vma(new_below): the kept part below is the new VMA; a speculative reader of the old one sees it go.
    expect(original?.detached).toBe(true);
    expect(mm.findVma(A)).not.toBe(original);
    expect(mm.findVma(A)?.detached).toBe(false);
  });

  it('unmapRegion of no VMAs does nothing', () => {
    const { mem, mm } = makeSystem();
    map(mm, A, 1);
    touch(mm, A);
    const free = mem.freeCount;
    runSync(unmapRegion(mm, [], 0, 0));
    expect(mem.freeCount).toBe(free);
    expect(mm.pgd.leaf(A)).not.toBeNull();
  });

  it('with freePgtablesUnderPtl, free_pgtables runs under mm->page_table_lock, released afterwards', () => {
    for (const under of [true, false]) {
      const { mm } = makeSystem({ freePgtablesUnderPtl: under });
      map(mm, A, 1);
      touch(mm, A);
      const ops = mm.pageTables;
      const orig = ops.freePgtables.bind(ops);
      const held: boolean[] = [];
      ops.freePgtables = function* (...args: Parameters<typeof orig>) {
        held.push(mm.pageTableLock.isLocked());
        yield* orig(...args);
      };
      expect(munmapSync(mm, A, P)).toEqual(OK);
      expect(held).toEqual([under]);
      expect(mm.pageTableLock.isLocked()).toBe(false);
    }
  });

  it('sysMunmap takes and releases the mmap lock around the unmap', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    const r = runSync(
      (function* () {
        const first = yield* sysMunmap(mm, A, P);
        const second = yield* sysMunmap(mm, A + P, P);
        yield* mm.mmapWriteLock();
        yield* mm.mmapWriteUnlock();
        return [first, second];
      })(),
    );
    expect(r).toEqual([OK, OK]);
    expect(mm.mapCount).toBe(0);
    expect(runSync(sysMunmap(mm, A + 1, P))).toEqual(err(Errno.EINVAL));
  });
});
