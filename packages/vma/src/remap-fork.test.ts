import { describe, expect, it } from 'vitest';
import { vmaIsForkChild } from './anon-vma.js';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MM_ANONPAGES, MmStruct } from './mm-struct.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { brkSync, forkSync, mmapSync, mprotectSync, mremapSync, munmapSync } from './sync-api.js';
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
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

function map(mm: MmStruct, page: number, pages: number, prot = RW) {
  const r = mmapSync(mm, {
    addr: A + page * P,
    len: pages * P,
    prot,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
}
function maps(mm: MmStruct): string[] {
  return [...mm.vmas()].map((v) => `${(v.vmStart - A) / P}-${(v.vmEnd - A) / P} ${v.perms()}`);
}
function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
}

describe('mremap', () => {
  it('shrinks in place and grows in place when the space after the VMA is free', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    expect(mremapSync(mm, A, 4 * P, 2 * P, 0)).toEqual({ ok: true, value: A });
    expect(maps(mm)).toEqual(['0-2 rw-p']);
    expect(present(mm)).toEqual([0, 1]);
    expect(mremapSync(mm, A, 2 * P, 6 * P, 0)).toEqual({ ok: true, value: A });
    expect(maps(mm)).toEqual(['0-6 rw-p']);
    checkMmInvariants([mm]);
  });

  it('shrinking is an munmap of the tail, even across VMA boundaries; the same size is a no-op', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 4, 2);
    expect(mremapSync(mm, A, 10 * P, 10 * P, 0)).toEqual({ ok: true, value: A });
    expect(mremapSync(mm, A, 6 * P, P, 0)).toEqual({ ok: true, value: A });
    expect(maps(mm)).toEqual(['0-1 rw-p']);
  });

  it('old_len 0 duplicates a shared mapping (and is refused for a private one)', () => {
    const mm = new MmStruct();
    const r = mmapSync(mm, {
      addr: A,
      len: 2 * P,
      prot: RW,
      flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    expect(r.ok).toBe(true);
    const d = mremapSync(mm, A, 0, 2 * P, MREMAP_MAYMOVE);
    expect(d.ok).toBe(true);
    expect(mm.mapCount).toBe(2);
    expect(d.ok && mm.vmaLookup(d.value)?.vmFile).toBe(mm.vmaLookup(A)?.vmFile);
  });

  it('growing into a compatible next VMA merges with it, as vma_merge_extend does', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 4, 2);
    expect(mremapSync(mm, A, 2 * P, 4 * P, 0)).toEqual({ ok: true, value: A });
    expect(maps(mm)).toEqual(['0-6 rw-p']);
  });

  it('without MREMAP_MAYMOVE a blocked grow fails with ENOMEM; with it the VMA and its pages move', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 2, 1, PROT_READ);
    touch(mm, A, 2 * P);
    const before = procMaps(mm);
    expect(mremapSync(mm, A, 2 * P, 4 * P, 0)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(procMaps(mm)).toBe(before);
    const r = mremapSync(mm, A, 2 * P, 4 * P, MREMAP_MAYMOVE);
    expect(r.ok).toBe(true);
    const to = r.ok ? r.value : 0;
    expect(to).not.toBe(A);
    expect(mm.vmaLookup(A)).toBeNull();
    expect(mm.vmaLookup(to)?.vmEnd).toBe(to + 4 * P);
    expect([...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => p.addr)).toEqual([to, to + P]);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    checkMmInvariants([mm]);
  });

  it('MREMAP_FIXED moves to the given address, replacing what is there', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 10, 3, PROT_READ);
    touch(mm, A, 2 * P);
    expect(mremapSync(mm, A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 10 * P)).toEqual({
      ok: true,
      value: A + 10 * P,
    });
    expect(maps(mm)).toEqual(['10-12 rw-p', '12-13 r--p']);
    expect(present(mm)).toEqual([10, 11]);
    checkMmInvariants([mm]);
  });

  it('returns Linux errnos for bad requests and changes nothing', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 4, 2);
    const before = procMaps(mm);
    const cases: [number, number, number, number, number, number][] = [
      [A, P, 2 * P, 8, 0, Errno.EINVAL],
      [A + 1, P, 2 * P, 0, 0, Errno.EINVAL],
      [A, P, 0, 0, 0, Errno.EINVAL],
      [A, P, P, MREMAP_FIXED, A + 20 * P, Errno.EINVAL],
      [A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + P, Errno.EINVAL],
      [A, P, 2 * P, MREMAP_DONTUNMAP | MREMAP_MAYMOVE, 0, Errno.EINVAL],
      [A + 2 * P, P, 2 * P, 0, 0, Errno.EFAULT],
      [A, 3 * P, 4 * P, 0, 0, Errno.EFAULT],
      [A, 0, P, MREMAP_MAYMOVE, 0, Errno.EINVAL],
    ];
    for (const [addr, oldLen, newLen, flags, newAddr, errno] of cases) {
      expect(mremapSync(mm, addr, oldLen, newLen, flags, newAddr), `${[oldLen, newLen, flags]}`).toEqual({
        ok: false,
        errno,
      });
      expect(procMaps(mm)).toBe(before);
    }
  });
});

describe('brk', () => {
  it('grows and shrinks the heap, which maps prints as [heap]; failures return the old break', () => {
    const mm = new MmStruct({ startBrk: 0x555555559000 });
    expect(brkSync(mm, 0)).toBe(0x555555559000);
    expect(brkSync(mm, 0x555555559000 + 3 * P + 10)).toBe(0x555555559000 + 3 * P + 10);
    expect(procMaps(mm)).toBe(
      '555555559000-55555555d000 rw-p 00000000 00:00 0                          [heap]\n',
    );
    expect(brkSync(mm, 0x555555559000 + P)).toBe(0x555555559000 + P);
    expect(mm.findVma(0)?.vmEnd).toBe(0x55555555a000);
    expect(brkSync(mm, 0x555555558000)).toBe(0x555555559000 + P);
    // A mapping just above the break blocks growth into it (and its page of slack).
    mmapSync(mm, {
      addr: 0x555555560000,
      len: P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    expect(brkSync(mm, 0x555555560000)).toBe(0x555555559000 + P);
    expect(brkSync(mm, 0x55555555f000)).toBe(0x55555555f000);
    expect(mm.mapCount).toBe(2);
    checkMmInvariants([mm]);
  });
});

describe('fork (dup_mmap)', () => {
  it('makes private writable pages copy-on-write in both mms and shares them with refcounts and mapcounts', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 2);
    map(mm, 4, 1, PROT_READ);
    touch(mm, A, 2 * P);
    const child = forkSync(mm, PagetableOps.factory({ mem }));
    expect(maps(child)).toEqual(maps(mm));
    for (const m of [mm, child]) {
      const ptes = [...m.pageTables.presentPtes(0, 2 ** 47)];
      expect(ptes.map((p) => [(p.addr - A) / P, p.writable])).toEqual([
        [0, false],
        [1, false],
      ]);
      expect(m.rss[MM_ANONPAGES]).toBe(2);
    }
    const page = [...mm.pageTables.presentPtes(A, A + P)][0].page as { refcount: number; mapcount: number };
    expect([page.refcount, page.mapcount]).toEqual([2, 2]);
    checkMmInvariants([mm, child], {
      mapcount: (p) => (p as { mapcount: number }).mapcount,
      refcount: (p) => (p as { refcount: number }).refcount,
    });
    // The child's VMA is linked to the parent's anon_vma and has its own: a fork child.
    const cv = child.vmaLookup(A);
    expect(vmaIsForkChild(cv)).toBe(true);
    expect(cv?.anonVma?.parent).toBe(mm.vmaLookup(A)?.anonVma);
    // Unmapping in the child drops only the child's references.
    munmapSync(child, A, 2 * P);
    expect([page.refcount, page.mapcount]).toEqual([1, 1]);
    checkMmInvariants([mm, child]);
  });

  it('a fork child VMA with pages does not lend its anon_vma to a merge (is_mergeable_anon_vma)', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const child = forkSync(mm);
    // mprotect of the child's first page splits; restoring it cannot merge with a fork child's anon_vma
    // only when the neighbour has none; here both halves share it, so they merge back.
    mprotectSync(child, A, P, PROT_READ);
    expect(maps(child)).toEqual(['0-1 r--p', '1-2 rw-p']);
    mprotectSync(child, A, P, RW);
    expect(maps(child)).toEqual(['0-2 rw-p']);
    // A fresh mapping next to the child's faulted VMA does not merge (case 2: the target is a fork child).
    mmapSync(child, {
      addr: A + 2 * P,
      len: P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    expect(maps(child)).toEqual(['0-2 rw-p', '2-3 rw-p']);
    // In the parent the same mapping merges.
    mmapSync(mm, {
      addr: A + 2 * P,
      len: P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    expect(maps(mm)).toEqual(['0-3 rw-p']);
  });
});

describe('anon_vma merge rules', () => {
  it('VMAs that got different anon_vmas from faults do not merge across a new mapping between them', () => {
    const { mm } = makeSystem();
    map(mm, 0, 1);
    map(mm, 2, 1);
    touch(mm, A);
    touch(mm, A + 2 * P);
    expect(mm.vmaLookup(A)?.anonVma).not.toBe(mm.vmaLookup(A + 2 * P)?.anonVma);
    map(mm, 1, 1);
    expect(maps(mm)).toEqual(['0-2 rw-p', '2-3 rw-p']);
    checkMmInvariants([mm]);
  });

  it('a fault next to a compatible faulted VMA reuses its anon_vma, so the two can merge later', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A);
    mprotectSync(mm, A + P, P, PROT_READ);
    touch(mm, A + P);
    expect(mm.vmaLookup(A + P)?.anonVma).toBe(mm.vmaLookup(A)?.anonVma);
    mprotectSync(mm, A + P, P, RW);
    expect(maps(mm)).toEqual(['0-2 rw-p']);
  });
});
