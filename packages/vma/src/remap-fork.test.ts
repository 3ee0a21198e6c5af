import { describe, expect, it } from 'vitest';
import { vmaIsForkChild } from './anon-vma.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MM_ANONPAGES, MmStruct } from './mm-struct.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { brkSync, forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

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
