import { Rcu } from '@spf/locks';
import { Machine, runSync } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, type Page, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it, vi } from 'vitest';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MM_ANONPAGES, MmStruct, TASK_SIZE_4LEVEL } from './mm-struct.js';
import type { MmapFile } from './mmap.js';
import { doMremap, sysMremap } from './mremap.js';
import { type OvercommitMode, OvercommitPolicy } from './overcommit.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mremapSync, munmapSync } from './sync-api.js';
import { withWriteLock } from './test-support/mmap-lock.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_DONTEXPAND,
  VM_IO,
  VM_PFNMAP,
} from './vm-flags.js';
import { vmaIsWriteLocked } from './vma-lock.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const MOVE = MREMAP_MAYMOVE;
const FIXED = MREMAP_MAYMOVE | MREMAP_FIXED;
const DONTUNMAP = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
const err = (errno: number) => ({ ok: false, errno });
const at = (addr: number) => ({ ok: true, value: addr });

function map(
  mm: MmStruct,
  page: number,
  pages: number,
  opts: { prot?: number; flags?: number; file?: MmapFile } = {},
) {
  const anon = opts.file ? 0 : MAP_ANONYMOUS;
  const flags = (opts.flags ?? MAP_PRIVATE) | anon | MAP_FIXED_NOREPLACE;
  const r = mmapSync(mm, {
    addr: A + page * P,
    len: pages * P,
    prot: opts.prot ?? RW,
    flags,
    file: opts.file,
  });
  if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
}
/** VMAs relative to the arena, in pages. */
function maps(mm: MmStruct): string[] {
  return [...mm.vmas()].map((v) => `${(v.vmStart - A) / P}-${(v.vmEnd - A) / P} ${v.perms()}`);
}
/** Present PTEs, as page numbers relative to the arena. */
function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
}
function vmaAt(mm: MmStruct, page: number) {
  const v = mm.vmaLookup(A + page * P);
  if (v === null) throw new Error(`no VMA at page ${page}`);
  return v;
}
function pagesAt(mm: MmStruct, page: number, n: number): Page[] {
  return [...mm.pageTables.presentPtes(A + page * P, A + (page + n) * P)].map((p) => p.page as Page);
}
/** Everything a refused call must leave as it was. */
const state = (mm: MmStruct) => ({
  maps: procMaps(mm),
  present: present(mm),
  mapCount: mm.mapCount,
  totalVm: mm.totalVm,
  committed: mm.committed,
  dataVm: mm.dataVm,
});

/** An mm whose overcommit policy (`mode`) sees a machine of `ram` pages. */
function mmWithRam(ram: number, mode: OvercommitMode = 'guess'): MmStruct {
  const holder: { mm: MmStruct | null } = { mm: null };
  const overcommit = new OvercommitPolicy({
    mode,
    totalRamPages: ram,
    committedPages: () => holder.mm?.committed ?? 0,
  });
  holder.mm = new MmStruct({ overcommit });
  return holder.mm;
}

/** A file whose references (get_file/fput) and vm_ops open/close calls are counted. */
function countedFile() {
  const counts = { refs: 0, opens: 0, closes: 0 };
  const file: MmapFile = {
    file: {
      path: '/data',
      devMajor: 8,
      devMinor: 1,
      ino: 7,
      get: () => void counts.refs++,
      *put() {
        counts.refs--;
      },
    },
    ops: { open: () => void counts.opens++, close: () => void counts.closes++ },
  };
  return { file, counts };
}

describe('mremap: check_mremap_params and the VMA checks (nothing changes on failure)', () => {
  // Two private VMAs, [0, 2) and [4, 6), and nothing else.
  const setup = () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 4, 2);
    return mm;
  };
  it.each([
    ['a negative address', -P, P, 2 * P, 0, 0, Errno.EINVAL],
    ['a fractional old_len', A, 1.5, 2 * P, 0, 0, Errno.EINVAL],
    ['a negative new_len', A, P, -P, 0, 0, Errno.EINVAL],
    ['a NaN new_len', A, P, Number.NaN, 0, 0, Errno.EINVAL],
    ['a negative new_addr', A, P, 2 * P, 0, -P, Errno.EINVAL],
    ['fractional flags', A, P, 2 * P, 1.5, 0, Errno.EINVAL],
    ['an unknown flag (8)', A, P, 2 * P, 8, 0, Errno.EINVAL],
    ['flag bit 32', A, P, 2 * P, 2 ** 32, 0, Errno.EINVAL],
    ['negative flags', A, P, 2 * P, -1, 0, Errno.EINVAL],
    ['flags -2^32 (no bit set in the low 32)', A, P, 2 * P, -(2 ** 32), 0, Errno.EINVAL],
    ['an unaligned address', A + 1, P, 2 * P, 0, 0, Errno.EINVAL],
    ['a zero new_len', A, P, 0, 0, 0, Errno.EINVAL],
    ['a new_len past TASK_SIZE', A, P, TASK_SIZE_4LEVEL + P, MOVE, 0, Errno.EINVAL],
    ['MREMAP_FIXED without MREMAP_MAYMOVE', A, P, P, MREMAP_FIXED, A + 20 * P, Errno.EINVAL],
    ['MREMAP_DONTUNMAP without MREMAP_MAYMOVE', A, P, P, MREMAP_DONTUNMAP, A + 20 * P, Errno.EINVAL],
    ['MREMAP_FIXED to an unaligned new_addr', A, P, P, FIXED, A + 20 * P + 8, Errno.EINVAL],
    ['MREMAP_DONTUNMAP to an unaligned new_addr', A, P, P, DONTUNMAP, A + 20 * P + 8, Errno.EINVAL],
    [
      'MREMAP_FIXED with new_addr + new_len past TASK_SIZE',
      A,
      P,
      2 * P,
      FIXED,
      TASK_SIZE_4LEVEL - P,
      Errno.EINVAL,
    ],
    [
      'MREMAP_DONTUNMAP with new_addr + new_len past TASK_SIZE',
      A,
      2 * P,
      2 * P,
      DONTUNMAP,
      TASK_SIZE_4LEVEL - P,
      Errno.EINVAL,
    ],
    ['MREMAP_DONTUNMAP that resizes', A, P, 2 * P, DONTUNMAP, A + 20 * P, Errno.EINVAL],
    ['MREMAP_FIXED onto the source (same start)', A, 2 * P, 2 * P, FIXED, A, Errno.EINVAL],
    ['MREMAP_FIXED overlapping the source from below', A + P, P, 2 * P, FIXED, A, Errno.EINVAL],
    ['MREMAP_FIXED overlapping the source from above', A, 2 * P, 2 * P, FIXED, A + P, Errno.EINVAL],
    ['an address in no VMA', A + 2 * P, P, 2 * P, 0, 0, Errno.EFAULT],
    ['an address in no VMA, moving', A + 2 * P, P, P, FIXED, A + 20 * P, Errno.EFAULT],
    ['growing a range that crosses the end of its VMA', A, 3 * P, 4 * P, MOVE, 0, Errno.EFAULT],
    ['moving a range that crosses the end of its VMA', A + P, 2 * P, 2 * P, FIXED, A + 20 * P, Errno.EFAULT],
    ['old_len 0 of a private mapping', A, 0, P, MOVE, 0, Errno.EINVAL],
    ['old_len 0 of a private mapping, to a fixed address', A, 0, P, FIXED, A + 20 * P, Errno.EINVAL],
  ])('%s', (_name, addr, oldLen, newLen, flags, newAddr, errno) => {
    const mm = setup();
    const before = state(mm);
    expect(mremapSync(mm, addr, oldLen, newLen, flags, newAddr)).toEqual(err(errno));
    expect(state(mm)).toEqual(before);
  });

  it('new_addr is ignored unless MREMAP_FIXED or MREMAP_DONTUNMAP asks for it (as on Linux 6.18)', () => {
    const mm = setup();
    // Past TASK_SIZE, too high for the length, unaligned: all ignored.
    expect(mremapSync(mm, A, 2 * P, 2 * P, 0, TASK_SIZE_4LEVEL + P)).toEqual(at(A));
    expect(mremapSync(mm, A, 2 * P, P, 0, TASK_SIZE_4LEVEL - P)).toEqual(at(A));
    expect(mremapSync(mm, A, P, 2 * P, 0, A + 8)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-2 rw-p', '4-6 rw-p']);
  });

  it('accepts the boundaries: a destination ending at TASK_SIZE, or touching the source on either side', () => {
    const mm = new MmStruct();
    map(mm, 10, 2);
    const top = TASK_SIZE_4LEVEL - 2 * P;
    expect(mremapSync(mm, A + 10 * P, 2 * P, 2 * P, FIXED, top)).toEqual(at(top));
    expect(mremapSync(mm, top, 2 * P, 2 * P, FIXED, A + 10 * P)).toEqual(at(A + 10 * P));
    // Right below the source: [8, 10) ends where [10, 12) starts.
    expect(mremapSync(mm, A + 10 * P, 2 * P, 2 * P, FIXED, A + 8 * P)).toEqual(at(A + 8 * P));
    // Right above it: [10, 12) starts where [8, 10) ends.
    expect(mremapSync(mm, A + 8 * P, 2 * P, 2 * P, FIXED, A + 10 * P)).toEqual(at(A + 10 * P));
    expect(maps(mm)).toEqual(['10-12 rw-p']);
    // The largest new_len: the whole address space from 0, which no move can find room for.
    expect(mremapSync(mm, A + 10 * P, 2 * P, TASK_SIZE_4LEVEL, MOVE)).toEqual(err(Errno.ENOMEM));
  });

  it('rounds old_len and new_len up to whole pages', () => {
    const mm = new MmStruct();
    map(mm, 0, 1);
    // old_len 1 is the page; new_len P + 1 is two pages.
    expect(mremapSync(mm, A, 1, P + 1, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-2 rw-p']);
    expect(mremapSync(mm, A, 2 * P - 1, 1, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-1 rw-p']);
  });

  it('refuses to grow a VM_DONTEXPAND or VM_PFNMAP VMA (EFAULT), or to MREMAP_DONTUNMAP one (EINVAL)', () => {
    for (const bit of [VM_DONTEXPAND, VM_PFNMAP]) {
      const mm = new MmStruct();
      map(mm, 0, 2);
      const vma = mm.vmaLookup(A);
      if (vma === null) throw new Error('no VMA');
      vma.vmFlags |= bit; // as a driver's mmap (remap_pfn_range) sets them
      const before = state(mm);
      expect(mremapSync(mm, A, 2 * P, 3 * P, 0)).toEqual(err(Errno.EFAULT));
      expect(mremapSync(mm, A, 2 * P, 3 * P, MOVE)).toEqual(err(Errno.EFAULT));
      expect(mremapSync(mm, A, 2 * P, 2 * P, DONTUNMAP, A + 20 * P)).toEqual(err(Errno.EINVAL));
      expect(state(mm)).toEqual(before);
      // Moving it without growing is allowed.
      expect(mremapSync(mm, A, 2 * P, 2 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
      // And shrinking it.
      expect(mremapSync(mm, A + 20 * P, 2 * P, P, 0)).toEqual(at(A + 20 * P));
    }
  });

  it('growth past RLIMIT_AS is ENOMEM (may_expand_vm); growth up to it succeeds', () => {
    const mm = new MmStruct({ rlimitAs: 8 * P });
    map(mm, 0, 2);
    map(mm, 10, 2);
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 7 * P, 0)).toEqual(err(Errno.ENOMEM));
    expect(mremapSync(mm, A, 2 * P, 7 * P, MOVE)).toEqual(err(Errno.ENOMEM));
    expect(mremapSync(mm, A, 2 * P, 7 * P, FIXED, A + 20 * P)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    expect(mremapSync(mm, A, 2 * P, 6 * P, 0)).toEqual(at(A));
    expect(mm.totalVm).toBe(8);
    // Moving without growing is not limited.
    expect(mremapSync(mm, A, 6 * P, 6 * P, FIXED, A + 30 * P)).toEqual(at(A + 30 * P));
    expect(mm.totalVm).toBe(8);
  });

  it('a move refuses with ENOMEM when the map count is near max_map_count (4 maps of headroom)', () => {
    // `count` one-page VMAs side by side (alternating permissions keep them apart), max_map_count 10.
    const packed = (count: number) => {
      const mm = new MmStruct({ maxMapCount: 10 });
      for (let i = 0; i < count; i++) map(mm, i, 1, { prot: i % 2 ? PROT_READ : RW });
      return mm;
    };
    // MREMAP_FIXED and MREMAP_DONTUNMAP: map_count + 2 must stay below max_map_count - 3.
    let mm = packed(5);
    let before = state(mm);
    expect(mremapSync(mm, A, P, P, FIXED, A + 40 * P)).toEqual(err(Errno.ENOMEM));
    expect(mremapSync(mm, A, P, P, DONTUNMAP, A + 40 * P)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    mm = packed(4);
    expect(mremapSync(mm, A, P, P, FIXED, A + 40 * P)).toEqual(at(A + 40 * P));
    // A move to grow (move_vma()): map_count must be below max_map_count - 3.
    mm = packed(7);
    before = state(mm);
    expect(mremapSync(mm, A, P, 2 * P, MOVE)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    mm = packed(6);
    expect(mremapSync(mm, A, P, 2 * P, MOVE).ok).toBe(true);
    expect(mm.vmaLookup(A)).toBeNull();
  });
});

describe('mremap in place', () => {
  it('returns the address unchanged for the same size, changing nothing', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 2 * P, 0)).toEqual(at(A));
    expect(mremapSync(mm, A, 2 * P, 2 * P, MOVE)).toEqual(at(A));
    expect(state(mm)).toEqual(before);
  });

  it('shrinks by unmapping the tail (pages freed, counters lowered), even across VMAs', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    map(mm, 4, 2, { prot: PROT_READ });
    touch(mm, A, 4 * P);
    expect(mremapSync(mm, A, 6 * P, 2 * P, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-2 rw-p']);
    expect(present(mm)).toEqual([0, 1]);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    expect([mm.totalVm, mm.dataVm, mm.committed]).toEqual([2, 2, 2]);
    checkMmInvariants([mm]);
  });

  it('grows in place when the range ends at the VMA end and the space after is free; it is charged', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const pages = pagesAt(mm, 0, 2);
    expect(mremapSync(mm, A, 2 * P, 5 * P, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-5 rw-p']);
    expect(pagesAt(mm, 0, 2)).toEqual(pages);
    expect([mm.totalVm, mm.dataVm, mm.committed]).toEqual([5, 5, 5]);
    expect((mm.vmaLookup(A)?.vmFlags ?? 0) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    checkMmInvariants([mm]);
  });

  it('grows in place from inside a VMA when the range ends at its end', () => {
    const mm = new MmStruct();
    map(mm, 0, 4);
    expect(mremapSync(mm, A + 2 * P, 2 * P, 3 * P, 0)).toEqual(at(A + 2 * P));
    expect(maps(mm)).toEqual(['0-5 rw-p']);
  });

  it('a range that ends before its VMA ends cannot grow in place: ENOMEM, or a move with MREMAP_MAYMOVE', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 3 * P, 0)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    const first = pagesAt(mm, 0, 2);
    const r = mremapSync(mm, A, 2 * P, 3 * P, MOVE);
    expect(r.ok).toBe(true);
    const to = r.ok ? (r.value - A) / P : 0;
    expect(to).not.toBe(0);
    expect(maps(mm)).toContain('2-4 rw-p');
    expect(pagesAt(mm, to, 2)).toEqual(first);
    checkMmInvariants([mm]);
  });

  it('growing into a compatible next VMA merges with it (vma_merge_extend)', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 4, 2);
    expect(mremapSync(mm, A, 2 * P, 4 * P, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-6 rw-p']);
    expect(mm.mapCount).toBe(1);
    expect(mm.totalVm).toBe(6);
  });

  it('cannot grow past TASK_SIZE in place (vma_expandable); with MREMAP_MAYMOVE it moves down', () => {
    const mm = new MmStruct();
    const top = TASK_SIZE_4LEVEL - 2 * P;
    expect(
      mmapSync(mm, {
        addr: top,
        len: 2 * P,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      }).ok,
    ).toBe(true);
    expect(mremapSync(mm, top, 2 * P, 3 * P, 0)).toEqual(err(Errno.ENOMEM));
    const r = mremapSync(mm, top, 2 * P, 3 * P, MOVE);
    expect(r.ok && r.value + 3 * P <= TASK_SIZE_4LEVEL).toBe(true);
  });

  it('a blocked grow without MREMAP_MAYMOVE is ENOMEM; with it the VMA and its pages move', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 2, 1, { prot: PROT_READ });
    touch(mm, A, 2 * P);
    const pages = pagesAt(mm, 0, 2);
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 4 * P, 0)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    const r = mremapSync(mm, A, 2 * P, 4 * P, MOVE);
    expect(r.ok).toBe(true);
    const to = r.ok ? r.value : 0;
    expect(mm.vmaLookup(A)).toBeNull();
    expect(mm.vmaLookup(to)?.vmEnd).toBe(to + 4 * P);
    expect(pagesAt(mm, (to - A) / P, 4)).toEqual(pages);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    // The move keeps the old pages' charge and adds the growth (the read-only page is not charged).
    expect([mm.totalVm, mm.committed]).toEqual([5, 4]);
    checkMmInvariants([mm]);
  });
});

describe('mremap moves (move_vma, copy_vma)', () => {
  it('MREMAP_FIXED moves to the given address, replacing what is there; counters stay', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 10, 3, { prot: PROT_READ });
    touch(mm, A, 2 * P);
    const pages = pagesAt(mm, 0, 2);
    expect(mremapSync(mm, A, 2 * P, 2 * P, FIXED, A + 10 * P)).toEqual(at(A + 10 * P));
    expect(maps(mm)).toEqual(['10-12 rw-p', '12-13 r--p']);
    expect(present(mm)).toEqual([10, 11]);
    expect(pagesAt(mm, 10, 2)).toEqual(pages);
    expect([mm.totalVm, mm.committed, mm.dataVm]).toEqual([3, 2, 2]);
    checkMmInvariants([mm]);
  });

  it('MREMAP_FIXED with a smaller new_len shrinks the source first, then moves what is left', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    const pages = pagesAt(mm, 0, 2);
    expect(mremapSync(mm, A, 4 * P, 2 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    expect(maps(mm)).toEqual(['20-22 rw-p']);
    expect(present(mm)).toEqual([20, 21]);
    expect(pagesAt(mm, 20, 2)).toEqual(pages);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    expect([mm.totalVm, mm.committed]).toEqual([2, 2]);
    checkMmInvariants([mm]);
  });

  it('MREMAP_FIXED that grows moves and extends; the growth is charged', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    expect(mremapSync(mm, A, 2 * P, 4 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    expect(maps(mm)).toEqual(['20-24 rw-p']);
    expect(present(mm)).toEqual([20, 21]);
    expect([mm.totalVm, mm.committed]).toEqual([4, 4]);
  });

  it('MREMAP_DONTUNMAP leaves the old VMA mapped but empty, moves the pages, and charges the whole length', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const pages = pagesAt(mm, 0, 2);
    expect(mremapSync(mm, A, 2 * P, 2 * P, DONTUNMAP, A + 20 * P)).toEqual(at(A + 20 * P));
    expect(maps(mm)).toEqual(['0-2 rw-p', '20-22 rw-p']);
    expect(present(mm)).toEqual([20, 21]);
    expect(pagesAt(mm, 20, 2)).toEqual(pages);
    expect([mm.totalVm, mm.committed]).toEqual([4, 4]);
    checkMmInvariants([mm]);
  });

  it("move_vma() write-locks the source VMA before its PTEs move (vma_start_write's mremap site); switched off, MREMAP_DONTUNMAP leaves it unlocked", () => {
    for (const on of [true, false]) {
      const { mm } = makeSystem({ vmaLocking: { startWrite: { mremap: on } } });
      map(mm, 0, 2);
      touch(mm, A, 2 * P);
      const src = vmaAt(mm, 0);
      // Checked before mmap_write_unlock(), whose vma_end_write_all() ends every VMA write lock.
      const locked = withWriteLock(mm, function* () {
        expect(yield* doMremap(mm, A, 2 * P, 2 * P, DONTUNMAP, A + 20 * P)).toEqual(at(A + 20 * P));
        return [vmaIsWriteLocked(src), vmaIsWriteLocked(vmaAt(mm, 20))];
      });
      // The new VMA is locked by its own site (newVma) either way; the old one, kept mapped, only by mremap's.
      expect(locked, `mremap site ${on ? 'on' : 'off'}`).toEqual([on, true]);
      expect(maps(mm)).toEqual(['0-2 rw-p', '20-22 rw-p']);
    }
  });

  it('MREMAP_DONTUNMAP without MREMAP_FIXED picks a free destination itself', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const r = mremapSync(mm, A, 2 * P, 2 * P, DONTUNMAP, 0);
    expect(r.ok).toBe(true);
    const to = r.ok ? (r.value - A) / P : 0;
    expect(to).not.toBe(0);
    expect(present(mm)).toEqual([to, to + 1]);
    expect(mm.vmaLookup(A)?.vmEnd).toBe(A + 2 * P);
  });

  it('an unfaulted anonymous VMA takes the page offset of its new address, so it merges there', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 20, 2);
    expect(mremapSync(mm, A, 2 * P, 2 * P, FIXED, A + 22 * P)).toEqual(at(A + 22 * P));
    expect(maps(mm)).toEqual(['20-24 rw-p']);
    expect(mm.vmaLookup(A + 22 * P)?.vmPgoff).toBe((A + 20 * P) / P);
    expect(mm.mapCount).toBe(1);
  });

  it('a faulted anonymous VMA keeps its page offset and anon_vma when it moves, so its pages stay reachable', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const old = mm.vmaLookup(A);
    const pgoff = old?.vmPgoff;
    const anonVma = old?.anonVma;
    expect(anonVma).not.toBeNull();
    expect(mremapSync(mm, A, 2 * P, 2 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    const moved = mm.vmaLookup(A + 20 * P);
    expect(moved?.vmPgoff).toBe(pgoff);
    expect(moved?.anonVma).toBe(anonVma);
    for (const [i, page] of pagesAt(mm, 20, 2).entries())
      expect(moved?.linearPageIndex(A + (20 + i) * P)).toBe(page.index);
    checkMmInvariants([mm]);
  });

  it('a moved file mapping takes a file reference and opens its vm_ops; the old one drops them', () => {
    const mm = new MmStruct();
    const { file, counts } = countedFile();
    map(mm, 0, 4, { flags: MAP_PRIVATE, prot: PROT_READ, file });
    expect(counts.refs).toBe(1);
    expect(mremapSync(mm, A + P, 2 * P, 2 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    // [0, 1) and [3, 4) stay (the split took a reference) and [20, 22) is the copy: one reference each.
    expect(maps(mm)).toEqual(['0-1 r--p', '3-4 r--p', '20-22 r--p']);
    expect(mm.vmaLookup(A + 20 * P)?.vmPgoff).toBe(1);
    expect(counts.refs).toBe(3);
    expect(counts.opens - counts.closes).toBe(3);
    expect(mremapSync(mm, A + 20 * P, 2 * P, 2 * P, FIXED, A + 40 * P)).toEqual(at(A + 40 * P));
    expect(counts.refs).toBe(3);
    expect(counts.opens - counts.closes).toBe(3);
  });

  it('old_len 0 duplicates a shared mapping: both VMAs map the same object', () => {
    const mm = new MmStruct();
    map(mm, 0, 2, { flags: MAP_SHARED });
    const d = mremapSync(mm, A, 0, 2 * P, MOVE);
    expect(d.ok).toBe(true);
    expect(mm.mapCount).toBe(2);
    expect(d.ok && mm.vmaLookup(d.value)?.vmFile).toBe(mm.vmaLookup(A)?.vmFile);
    expect(mm.vmaLookup(A)?.vmEnd).toBe(A + 2 * P);
  });

  it('a move that the overcommit policy refuses changes nothing; one that fits is charged its growth', () => {
    const mm = mmWithRam(64);
    map(mm, 0, 2);
    map(mm, 2, 1, { prot: PROT_READ });
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 100 * P, MOVE)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    expect(mremapSync(mm, A, 2 * P, 4 * P, MOVE).ok).toBe(true);
    expect(mm.committed).toBe(4);
    // MREMAP_DONTUNMAP is charged the whole new length, as the old range stays: under `never` a request for
    // more than what is left is refused.
    const holder: { mm: MmStruct | null } = { mm: null };
    const overcommit = new OvercommitPolicy({
      mode: 'never',
      totalRamPages: 1024,
      committedPages: () => holder.mm?.committed ?? 0,
    });
    const dm = new MmStruct({ overcommit });
    holder.mm = dm;
    map(dm, 0, 300);
    const dmBefore = state(dm);
    expect(mremapSync(dm, A, 300 * P, 300 * P, DONTUNMAP, A + 1000 * P)).toEqual(err(Errno.ENOMEM));
    expect(state(dm)).toEqual(dmBefore);
    expect(mremapSync(dm, A, 100 * P, 100 * P, DONTUNMAP, A + 1000 * P)).toEqual(at(A + 1000 * P));
    expect(dm.committed).toBe(400);
  });

  it('a move that charges nothing still asks the policy (vrm_calc_charge): under `never`, past the commit limit, ENOMEM', () => {
    // The user reserve is large, so the limit a process sees falls by total_vm / 32 as its mappings grow.
    const holder: { mm: MmStruct | null } = { mm: null };
    const overcommit = new OvercommitPolicy({
      mode: 'never',
      totalRamPages: 1024,
      userReserveKbytes: 100_000,
      committedPages: () => holder.mm?.committed ?? 0,
    });
    const mm = new MmStruct({ overcommit });
    holder.mm = mm;
    // 400 accounted pages fit (limit 512, less 32 for the admin reserve, less 0 / 32).
    map(mm, 0, 400);
    // 3200 read-only pages are not charged, but they bring the limit down by 100 to 380, below the 400.
    map(mm, 1000, 3200, { prot: PROT_READ });
    expect(mm.committed).toBe(400);
    const before = state(mm);
    // __vm_enough_memory(mm, 0) compares what is committed with the limit like any other request.
    expect(mremapSync(mm, A, 400 * P, 400 * P, FIXED, A + 5000 * P)).toEqual(err(Errno.ENOMEM));
    expect(mremapSync(mm, A, 400 * P, 400 * P, DONTUNMAP, A + 5000 * P)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    // Unaccounted memory is not asked about: the read-only mapping moves.
    expect(mremapSync(mm, A + 1000 * P, 3200 * P, 3200 * P, FIXED, A + 5000 * P)).toEqual(at(A + 5000 * P));
    // Once total_vm is back down the same move fits (the limit 480 less 400 / 32: 468).
    expect(munmapSync(mm, A + 5000 * P, 3200 * P).ok).toBe(true);
    expect(mremapSync(mm, A, 400 * P, 400 * P, FIXED, A + 5000 * P)).toEqual(at(A + 5000 * P));
    expect(mm.committed).toBe(400);
  });

  it('an unaccounted (shared) mapping grows without a charge', () => {
    const mm = mmWithRam(64);
    map(mm, 0, 2, { flags: MAP_SHARED });
    expect(mremapSync(mm, A, 2 * P, 10 * P, 0)).toEqual(at(A));
    expect(mm.committed).toBe(0);
  });
});

describe('sysMremap', () => {
  it('runs under the mmap lock taken for writing, and releases it, also on failure', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    const write = vi.spyOn(mm, 'mmapWriteLock');
    const unlock = vi.spyOn(mm, 'mmapWriteUnlock');
    expect(runSync(sysMremap(mm, A, 2 * P, 4 * P, 0))).toEqual(at(A));
    expect(runSync(sysMremap(mm, A + 8 * P, P, 2 * P, 0))).toEqual(err(Errno.EFAULT));
    expect([write.mock.calls.length, unlock.mock.calls.length]).toEqual([2, 2]);
    expect(mm.mmapLock.isLocked()).toBe(false);
  });
});

describe('mremap: more of what a caller relies on', () => {
  it('the same size is the old address even for a range inside a VMA or across VMAs', () => {
    const mm = new MmStruct();
    map(mm, 0, 4);
    map(mm, 6, 2);
    const before = state(mm);
    expect(mremapSync(mm, A + P, P, P, 0)).toEqual(at(A + P));
    expect(mremapSync(mm, A, 10 * P, 10 * P, 0)).toEqual(at(A));
    expect(state(mm)).toEqual(before);
  });

  it('shrinking, in place or while moving, unmaps only the tail: the next VMA stays', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    map(mm, 4, 4, { prot: PROT_READ });
    map(mm, 8, 4);
    touch(mm, A, 4 * P);
    expect(mremapSync(mm, A, 4 * P, 2 * P, 0)).toEqual(at(A));
    expect(maps(mm)).toEqual(['0-2 rw-p', '4-8 r--p', '8-12 rw-p']);
    expect(mremapSync(mm, A, 2 * P, P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    expect(maps(mm)).toEqual(['4-8 r--p', '8-12 rw-p', '20-21 rw-p']);
    expect(present(mm)).toEqual([20]);
    // A move that shrinks a VMA right below another one.
    expect(mremapSync(mm, A + 8 * P, 4 * P, 2 * P, FIXED, A + 30 * P)).toEqual(at(A + 30 * P));
    expect(maps(mm)).toEqual(['4-8 r--p', '20-21 rw-p', '30-32 rw-p']);
    map(mm, 2, 2);
    expect(mremapSync(mm, A + 2 * P, 2 * P, P, FIXED, A + 40 * P)).toEqual(at(A + 40 * P));
    expect(maps(mm)).toEqual(['4-8 r--p', '20-21 rw-p', '30-32 rw-p', '40-41 rw-p']);
    checkMmInvariants([mm]);
  });

  it('a move to grow leaves the pages of the VMA after the old range where they are', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 2, 2, { prot: PROT_READ });
    touch(mm, A, 2 * P);
    touch(mm, A + 2 * P, 2 * P);
    const neighbour = pagesAt(mm, 2, 2);
    const r = mremapSync(mm, A, 2 * P, 4 * P, MOVE);
    expect(r.ok).toBe(true);
    expect(pagesAt(mm, 2, 2)).toEqual(neighbour);
    expect(maps(mm)).toContain('2-4 r--p');
    checkMmInvariants([mm]);
  });

  it('MREMAP_DONTUNMAP without MREMAP_FIXED takes new_addr as a hint only: what is mapped there stays', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 20, 2, { prot: PROT_READ });
    const r = mremapSync(mm, A, 2 * P, 2 * P, DONTUNMAP, A + 20 * P);
    expect(r.ok).toBe(true);
    expect(r.ok && r.value).not.toBe(A + 20 * P);
    expect(maps(mm)).toContain('20-22 r--p');
    expect(maps(mm)).toContain('0-2 rw-p');
  });

  it('a move with no room left is ENOMEM and changes nothing', () => {
    const MiB = 1024 * 1024;
    const mm = new MmStruct({ taskSize: 64 * MiB });
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    expect(mmapSync(mm, { addr: MiB, len: 20 * MiB, prot: RW, flags }).ok).toBe(true);
    expect(mmapSync(mm, { addr: 22 * MiB, len: 40 * MiB, prot: PROT_READ, flags }).ok).toBe(true);
    const before = state(mm);
    expect(mremapSync(mm, MiB, 20 * MiB, 20 * MiB, DONTUNMAP, 22 * MiB)).toEqual(err(Errno.ENOMEM));
    expect(mremapSync(mm, MiB, 20 * MiB, 30 * MiB, MOVE)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
  });

  it('MREMAP_FIXED below mmap_min_addr is EPERM (security_mmap_addr), not a move elsewhere', () => {
    const mm = new MmStruct();
    map(mm, 0, 1);
    expect(mremapSync(mm, A, P, P, FIXED, 0x1000)).toEqual(err(Errno.EPERM));
    expect(maps(mm)).toEqual(['0-1 rw-p']);
  });

  it('growth in place is charged only the growth, and refused (changing nothing) when the policy says no', () => {
    const mm = mmWithRam(1024, 'never');
    map(mm, 0, 300);
    const before = state(mm);
    expect(mremapSync(mm, A, 300 * P, 600 * P, 0)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    expect(mremapSync(mm, A, 300 * P, 400 * P, 0)).toEqual(at(A));
    expect(mm.committed).toBe(400);
  });

  it('a shared mapping is not charged: it grows past RAM', () => {
    const mm = mmWithRam(64);
    map(mm, 0, 2, { flags: MAP_SHARED });
    expect(mremapSync(mm, A, 2 * P, 100 * P, 0)).toEqual(at(A));
    expect(mm.committed).toBe(0);
    expect(mm.totalVm).toBe(100);
  });

  it('a VM_IO VMA cannot be extended in place (no merge): ENOMEM, nothing changes', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    vmaAt(mm, 0).vmFlags |= VM_IO;
    const before = state(mm);
    expect(mremapSync(mm, A, 2 * P, 4 * P, 0)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
  });

  it('grows in place near the top of the address space', () => {
    const mm = new MmStruct();
    const at0 = TASK_SIZE_4LEVEL - 16 * P;
    expect(
      mmapSync(mm, {
        addr: at0,
        len: 2 * P,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      }).ok,
    ).toBe(true);
    expect(mremapSync(mm, at0, 2 * P, 8 * P, 0)).toEqual(at(at0));
    expect(mm.vmaLookup(at0)?.vmEnd).toBe(at0 + 8 * P);
  });

  it('a moved private anonymous 2 MiB mapping is 2 MiB aligned; a shared or file one is not', () => {
    const MiB = 1024 * 1024;
    const dest = (flags: number, f?: MmapFile) => {
      const mm = new MmStruct();
      // One page right below mmap_base, so the top-down search finds an unaligned 2 MiB gap.
      expect(
        mmapSync(mm, {
          addr: mm.mmapBase - P,
          len: P,
          prot: RW,
          flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
        }).ok,
      ).toBe(true);
      const r0 = mmapSync(mm, {
        addr: A,
        len: MiB,
        prot: PROT_READ,
        flags: flags | MAP_FIXED_NOREPLACE,
        file: f,
      });
      expect(r0.ok).toBe(true);
      map(mm, 256, 1);
      const r = mremapSync(mm, A, MiB, 2 * MiB, MOVE);
      if (!r.ok) throw new Error(`mremap failed: ${r.errno}`);
      return { addr: r.value, base: mm.mmapBase };
    };
    const priv = dest(MAP_PRIVATE | MAP_ANONYMOUS);
    expect(priv.addr % (2 * MiB)).toBe(0);
    const shared = dest(MAP_SHARED | MAP_ANONYMOUS);
    expect(shared.addr).toBe(shared.base - P - 2 * MiB);
    const { file } = countedFile();
    const filed = dest(MAP_PRIVATE, file);
    expect(filed.addr).toBe(filed.base - P - 2 * MiB);
  });

  it('a file mapping without get/put or open/close hooks moves too', () => {
    const mm = new MmStruct();
    map(mm, 0, 2, {
      prot: PROT_READ,
      file: { file: { path: '/f', devMajor: 8, devMinor: 1, ino: 3 }, ops: {} },
    });
    expect(mremapSync(mm, A, 2 * P, 2 * P, FIXED, A + 20 * P)).toEqual(at(A + 20 * P));
    expect(maps(mm)).toEqual(['20-22 r--p']);
  });

  it('MREMAP_DONTUNMAP flushes the moved translations from every CPU that cached them', () => {
    const m = new Machine({ cpus: 2 });
    const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
    const mmu = new Mmu(mem, { cpus: 2 });
    const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ mem, mmu }) });
    map(mm, 0, 2);
    mmu.switchMm(0, mm.pgd);
    mmu.switchMm(1, mm.pgd);
    touch(mm, A, 2 * P);
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
    m.spawn(0, 'mremap', function* () {
      expect(yield* sysMremap(mm, A, 2 * P, 2 * P, DONTUNMAP, A + 64 * P)).toEqual(at(A + 64 * P));
    });
    expect(m.run().failure).toBeNull();
    // The old range is still mapped, but its PTEs moved: CPU 1 faults instead of using a stale entry.
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBe(-1);
    expect(mmu.access(1, A + 64 * P, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
  });
});
