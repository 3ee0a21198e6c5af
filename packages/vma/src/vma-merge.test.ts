import { EffectKind, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { vmaIsForkChild } from './anon-vma.js';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import type { MmapFile } from './mmap.js';
import { forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { type RecordedEffect, recordEffects } from './test-support/effects.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_IO,
  VM_READ,
  VM_WRITE,
} from './vm-flags.js';
import { type VmArea, type VmOperations, vmWriteEnd } from './vm-area.js';
import {
  commitVmaChanges,
  splitVma,
  splitVmaChecked,
  vmAreaDup,
  vmaMergeExistingRange,
  vmaMergeNewRange,
  vmaModifyFlags,
  vmgForExisting,
} from './vma-merge.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

function anon(mm: MmStruct, page: number, pages: number, prot = RW) {
  const r = mmapSync(mm, {
    addr: A + page * P,
    len: pages * P,
    prot,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
  });
  expect(r.ok).toBe(true);
}
/** A file mapping of `pages` pages at file page `pgoff`. */
function fmap(mm: MmStruct, file: MmapFile, page: number, pages: number, pgoff: number, prot = PROT_READ) {
  const r = mmapSync(mm, {
    addr: A + page * P,
    len: pages * P,
    prot,
    flags: MAP_PRIVATE | MAP_FIXED,
    file,
    offset: pgoff * P,
  });
  expect(r.ok).toBe(true);
}
/** VMAs relative to the arena, in pages, with their page offset relative to the arena's. */
function maps(mm: MmStruct): string[] {
  return [...mm.vmas()].map((v) => `${(v.vmStart - A) / P}-${(v.vmEnd - A) / P} ${v.perms()}`);
}
function vmaAt(mm: MmStruct, page: number): VmArea {
  const v = mm.vmaLookup(A + page * P);
  if (v === null) throw new Error(`no VMA at page ${page}`);
  return v;
}
function file(ops: VmOperations = {}): MmapFile {
  return { file: { path: '/f', devMajor: 8, devMinor: 1, ino: 9 }, ops };
}

describe('vma_merge_new_range: a new mapping next to compatible VMAs expands them', () => {
  it('merges with the VMA before, the VMA after, or both (the one after is removed)', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 2, 2);
    expect(maps(mm)).toEqual(['0-4 rw-p']);
    anon(mm, 6, 2);
    anon(mm, 5, 1);
    expect(maps(mm)).toEqual(['0-4 rw-p', '5-8 rw-p']);
    expect(vmaAt(mm, 5).vmPgoff).toBe((A + 5 * P) / P);
    const after = vmaAt(mm, 5);
    anon(mm, 4, 1);
    expect(maps(mm)).toEqual(['0-8 rw-p']);
    expect(mm.mapCount).toBe(1);
    expect(vmaAt(mm, 0).vmPgoff).toBe(A / P);
    expect(after.detached).toBe(true);
    checkMmInvariants([mm]);
  });

  it('does not merge VMAs that differ in flags, file, or page offset', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2, PROT_READ);
    anon(mm, 2, 2);
    const f = file();
    fmap(mm, f, 4, 2, 0);
    fmap(mm, f, 6, 2, 5);
    fmap(mm, f, 8, 2, 7);
    fmap(mm, file(), 10, 1, 9);
    expect(maps(mm)).toEqual(['0-2 r--p', '2-4 rw-p', '4-6 r--p', '6-10 r--p', '10-11 r--p']);
    expect(vmaAt(mm, 6).vmPgoff).toBe(5);
  });

  it('a new file range merges in front of the next VMA when the offsets continue, taking its own offset', () => {
    const mm = new MmStruct();
    const f = file();
    fmap(mm, f, 4, 2, 4);
    fmap(mm, f, 2, 2, 2);
    expect(maps(mm)).toEqual(['2-6 r--p']);
    expect(vmaAt(mm, 2).vmPgoff).toBe(2);
    fmap(mm, f, 0, 2, 1);
    expect(maps(mm)).toEqual(['0-2 r--p', '2-6 r--p']);
  });

  it('never merges a VM_SPECIAL range, nor a range with no neighbour', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    const prev = vmaAt(mm, 0);
    const base = {
      middle: null,
      start: A + 2 * P,
      end: A + 3 * P,
      pgoff: (A + 2 * P) / P,
      file: null,
      ops: null,
      anonVma: null,
    };
    expect(
      runSync(vmaMergeNewRange(mm, { ...base, prev, next: null, flags: prev.vmFlags | VM_IO })),
    ).toBeNull();
    expect(
      runSync(vmaMergeNewRange(mm, { ...base, prev: null, next: null, flags: prev.vmFlags })),
    ).toBeNull();
    expect(maps(mm)).toEqual(['0-2 rw-p']);
    expect(runSync(vmaMergeNewRange(mm, { ...base, prev, next: null, flags: prev.vmFlags }))).toBe(prev);
    expect(maps(mm)).toEqual(['0-3 rw-p']);
  });

  it('with justExpand (brk) only expands the VMA before, never the one after', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 3, 2);
    const prev = vmaAt(mm, 0);
    const next = vmaAt(mm, 3);
    const vmg = {
      prev,
      middle: null,
      next,
      start: A + 2 * P,
      end: A + 3 * P,
      pgoff: (A + 2 * P) / P,
      flags: prev.vmFlags,
      file: null,
      ops: null,
      anonVma: null,
    };
    expect(runSync(vmaMergeNewRange(mm, { ...vmg, justExpand: true }))).toBe(prev);
    expect(maps(mm)).toEqual(['0-3 rw-p', '3-5 rw-p']);
    expect(next.detached).toBe(false);
  });

  it('between two VMAs with different anon_vmas, merges with the one before only', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    anon(mm, 3, 2);
    touch(mm, A);
    touch(mm, A + 3 * P);
    expect(vmaAt(mm, 0).anonVma).not.toBe(vmaAt(mm, 3).anonVma);
    anon(mm, 2, 1);
    expect(maps(mm)).toEqual(['0-3 rw-p', '3-5 rw-p']);
    checkMmInvariants([mm]);
  });

  it('a range merging only in front of a faulted VMA shares its anon_vma', () => {
    const { mm } = makeSystem();
    anon(mm, 2, 2);
    touch(mm, A + 2 * P);
    const av = vmaAt(mm, 2).anonVma;
    anon(mm, 0, 2);
    expect(maps(mm)).toEqual(['0-4 rw-p']);
    expect(vmaAt(mm, 0).anonVma).toBe(av);
    checkMmInvariants([mm]);
  });

  it('keeps the VMA after when it has a close hook (it cannot be removed), merging with the one before', () => {
    const mm = new MmStruct();
    const f = file({ close: () => {} });
    fmap(mm, f, 0, 2, 0);
    fmap(mm, f, 3, 2, 3);
    fmap(mm, f, 2, 1, 2);
    expect(maps(mm)).toEqual(['0-3 r--p', '3-5 r--p']);
    const g = file();
    fmap(mm, g, 10, 2, 0);
    fmap(mm, g, 13, 2, 3);
    fmap(mm, g, 12, 1, 2);
    expect(maps(mm)).toContain('10-15 r--p');
  });
});

describe('vma_merge_existing_range: changing part of a VMA merges it into a matching neighbour', () => {
  it('mprotect of a VMA back to its neighbours merges all three; of an end merges with that side', () => {
    const mm = new MmStruct();
    anon(mm, 0, 6);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-2 rw-p', '2-4 r--p', '4-6 rw-p']);
    // The left end of the middle joins the VMA before.
    expect(mprotectSync(mm, A + 2 * P, P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-3 rw-p', '3-4 r--p', '4-6 rw-p']);
    expect(vmaAt(mm, 3).vmPgoff).toBe((A + 3 * P) / P);
    // The right end joins the VMA after, which takes the lower offset.
    expect(mprotectSync(mm, A + 3 * P, P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-6 rw-p']);
    expect(mm.mapCount).toBe(1);
    expect(mprotectSync(mm, A + 4 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-2 rw-p', '2-6 r--p']);
    expect(vmaAt(mm, 2).vmPgoff).toBe((A + 2 * P) / P);
    checkMmInvariants([mm]);
  });

  it('a change inside a VMA (touching neither end) merges with nothing', () => {
    const mm = new MmStruct();
    anon(mm, 0, 6);
    const v = vmaAt(mm, 0);
    const vmg = vmgForExisting(null, v, A + 2 * P, A + 3 * P, v.vmFlags);
    expect(runSync(vmaMergeExistingRange(mm, vmg))).toBeNull();
    expect(maps(mm)).toEqual(['0-6 rw-p']);
  });

  it('a VMA with a close hook is not removed by a merge: mprotect leaves three VMAs', () => {
    const mm = new MmStruct();
    const f = file({ close: () => {} });
    fmap(mm, f, 0, 6, 0, RW);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-2 rw-p', '2-4 rw-p', '4-6 rw-p']);
    // A part of the middle can still join the VMA before (nothing is removed).
    expect(mprotectSync(mm, A + 2 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A + 2 * P, P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-3 rw-p', '3-4 r--p', '4-6 rw-p']);
  });

  it('in a fork child, a faulted VMA does not absorb an unfaulted neighbour; in the parent it does', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    anon(mm, 2, 2, PROT_READ);
    touch(mm, A);
    const child = forkSync(mm);
    expect(vmaIsForkChild(vmaAt(child, 0))).toBe(true);
    expect(mprotectSync(child, A + 2 * P, 2 * P, RW).ok).toBe(true);
    expect(maps(child)).toEqual(['0-2 rw-p', '2-4 rw-p']);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-4 rw-p']);
    checkMmInvariants([mm, child]);
  });

  it('VMAs whose anon_vmas differ stay apart', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    anon(mm, 3, 2);
    touch(mm, A);
    touch(mm, A + 3 * P);
    anon(mm, 2, 1, PROT_READ);
    touch(mm, A + 2 * P);
    expect(mprotectSync(mm, A + 2 * P, P, RW).ok).toBe(true);
    // The read-only middle (not accounted) could reuse neither neighbour's anon_vma: three different ones.
    const avs = [0, 2, 3].map((p) => vmaAt(mm, p).anonVma);
    expect(new Set(avs).size).toBe(3);
    expect(maps(mm)).toEqual(['0-2 rw-p', '2-3 rw-p', '3-5 rw-p']);
    checkMmInvariants([mm]);
  });
});

describe('splitting VMAs', () => {
  it('split_vma puts the new VMA below or above the address, with the right offsets, anon_vma and file reference', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 4);
    touch(mm, A);
    const v = vmaAt(mm, 0);
    const below = runSync(splitVma(mm, v, A + P, true));
    if (typeof below === 'number') throw new Error('split failed');
    expect([below.vmStart, below.vmEnd, below.vmPgoff]).toEqual([A, A + P, A / P]);
    expect([v.vmStart, v.vmEnd, v.vmPgoff]).toEqual([A + P, A + 4 * P, A / P + 1]);
    const above = runSync(splitVma(mm, v, A + 3 * P, false));
    if (typeof above === 'number') throw new Error('split failed');
    expect([above.vmStart, above.vmEnd, above.vmPgoff]).toEqual([A + 3 * P, A + 4 * P, A / P + 3]);
    expect([v.vmStart, v.vmEnd, v.vmPgoff]).toEqual([A + P, A + 3 * P, A / P + 1]);
    expect(below.anonVma).toBe(v.anonVma);
    expect(above.anonVmaChain.map((c) => c.anonVma)).toEqual(v.anonVmaChain.map((c) => c.anonVma));
    expect(mm.mapCount).toBe(3);
    checkMmInvariants([mm]);
  });

  it('a split file VMA takes a file reference and is opened; vm_ops->may_split can refuse it (EINVAL)', () => {
    const mm = new MmStruct();
    let refs = 0;
    let opens = 0;
    const f: MmapFile = {
      file: { path: '/f', devMajor: 8, devMinor: 1, ino: 9, get: () => void refs++ },
      ops: { open: () => void opens++, maySplit: (_v, addr) => (addr === A + P ? -22 : 0) },
    };
    fmap(mm, f, 0, 4, 0);
    refs = 0;
    opens = 0;
    const v = vmaAt(mm, 0);
    expect(runSync(splitVma(mm, v, A + P, true))).toBe(Errno.EINVAL);
    expect(maps(mm)).toEqual(['0-4 r--p']);
    expect(typeof runSync(splitVma(mm, v, A + 2 * P, false))).toBe('object');
    expect([refs, opens]).toEqual([1, 1]);
    expect(maps(mm)).toEqual(['0-2 r--p', '2-4 r--p']);
    expect(vmaAt(mm, 2).vmPgoff).toBe(2);
  });

  it('split_vma refuses with ENOMEM at max_map_count, and splits one below it', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    anon(mm, 0, 4);
    anon(mm, 6, 1);
    expect(runSync(splitVmaChecked(mm, vmaAt(mm, 0), A + P, true))).toBe(Errno.ENOMEM);
    expect(mm.mapCount).toBe(2);
    expect(munmapSync(mm, A + 6 * P, P).ok).toBe(true);
    expect(typeof runSync(splitVmaChecked(mm, vmaAt(mm, 0), A + P, true))).toBe('object');
    expect(maps(mm)).toEqual(['0-1 rw-p', '1-4 rw-p']);
  });
});

describe('vm_area_dup and commitVmaChanges', () => {
  it('vm_area_dup copies the attributes, not the links, into the same or another mm', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    touch(mm, A);
    const v = vmaAt(mm, 0);
    v.vmPrivateData = { driver: 1 };
    const d = vmAreaDup(v);
    expect([d.vmMm, d.vmStart, d.vmEnd, d.vmFlags, d.vmPgoff, d.vmPageProt]).toEqual([
      mm,
      v.vmStart,
      v.vmEnd,
      v.vmFlags,
      v.vmPgoff,
      v.vmPageProt,
    ]);
    expect(d.vmPrivateData).toBe(v.vmPrivateData);
    expect(d.anonVma).toBe(v.anonVma);
    expect(d.anonVmaChain).toEqual([]);
    expect(d.vmFlags & (VM_READ | VM_WRITE)).toBe(VM_READ | VM_WRITE);
    const other = new MmStruct();
    expect(vmAreaDup(v, other).vmMm).toBe(other);
  });

  it('applies range changes, removals and insertions at once: map_count, detached, freed after RCU, fput once', () => {
    let puts = 0;
    const mm = new MmStruct();
    const f: MmapFile = {
      file: {
        path: '/f',
        devMajor: 8,
        devMinor: 1,
        ino: 9,
        *put() {
          puts++;
        },
      },
      ops: {},
    };
    fmap(mm, f, 0, 2, 0);
    fmap(mm, f, 4, 2, 4, RW);
    const a = vmaAt(mm, 0);
    const b = vmaAt(mm, 4);
    const n = vmAreaDup(a);
    n.vmStart = A + 10 * P;
    n.vmEnd = A + 11 * P;
    runSync(commitVmaChanges(mm, [{ vma: a, start: A, end: A + 3 * P, pgoff: 0 }], [b], [n]));
    expect(maps(mm)).toEqual(['0-3 r--p', '10-11 r--p']);
    expect(mm.mapCount).toBe(2);
    expect(b.detached).toBe(true);
    expect(puts).toBe(1);
    // Freed once no RCU reader can still find it.
    runSync(mm.rcu.synchronize());
    expect(b.poisoned).not.toBeNull();
    expect(a.poisoned).toBeNull();
    checkMmInvariants([mm]);
    // With the file released at __free_vma() instead, commitVmaChanges does not drop it: the free does, once.
    const late = new MmStruct({ vmFileRelease: 'freeVma' });
    fmap(late, f, 0, 1, 0);
    fmap(late, f, 2, 1, 2, RW);
    puts = 0;
    runSync(commitVmaChanges(late, [], [vmaAt(late, 2)], []));
    expect(maps(late)).toEqual(['0-1 r--p']);
    expect(puts).toBe(1);
  });

  it('a shared mapping keeps its file across a merge of two of its parts', () => {
    const mm = new MmStruct();
    const r = mmapSync(mm, { addr: A, len: 4 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED });
    expect(r.ok).toBe(true);
    const shm = vmaAt(mm, 0).vmFile;
    expect(mprotectSync(mm, A + P, P, PROT_READ).ok).toBe(true);
    expect(mprotectSync(mm, A + P, P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-4 rw-s']);
    expect(vmaAt(mm, 0).vmFile).toBe(shm);
  });
});

describe('what makes two VMAs mergeable (is_mergeable_vma, is_mergeable_anon_vma, adjacency)', () => {
  it('mappings of two different files do not merge even when they share vm_ops and the offsets continue', () => {
    const mm = new MmStruct();
    const ops: VmOperations = {};
    const f1: MmapFile = { file: { path: '/a', devMajor: 8, devMinor: 1, ino: 1 }, ops };
    const f2: MmapFile = { file: { path: '/b', devMajor: 8, devMinor: 1, ino: 2 }, ops };
    fmap(mm, f1, 0, 2, 0);
    fmap(mm, f2, 2, 2, 2);
    expect(maps(mm)).toEqual(['0-2 r--p', '2-4 r--p']);
    fmap(mm, f1, 4, 2, 4);
    expect(maps(mm)).toEqual(['0-2 r--p', '2-4 r--p', '4-6 r--p']);
  });

  it('file offsets that continue across a hole do not merge: the VMAs must touch', () => {
    const mm = new MmStruct();
    const f = file();
    fmap(mm, f, 0, 2, 0);
    // Offset 2 continues the first mapping's 0-1, but at page 4, after a hole.
    fmap(mm, f, 4, 2, 2);
    expect(maps(mm)).toEqual(['0-2 r--p', '4-6 r--p']);
    // In front of a VMA at page 10 whose offset continues this one's, with a hole between.
    fmap(mm, f, 10, 2, 9);
    fmap(mm, f, 7, 2, 7);
    expect(maps(mm)).toEqual(['0-2 r--p', '4-6 r--p', '7-9 r--p', '10-12 r--p']);
    // An existing VMA whose flags change to its predecessor's, with a hole between: no merge either.
    fmap(mm, f, 14, 2, 11, RW);
    expect(mprotectSync(mm, A + 14 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(maps(mm).slice(3)).toEqual(['10-12 r--p', '14-16 r--p']);
    checkMmInvariants([mm]);
  });

  it('a faulted range joins an unfaulted VMA before it, which takes its anon_vma; not in a fork child', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    anon(mm, 2, 2, PROT_READ);
    touch(mm, A + 2 * P);
    const child = forkSync(mm);
    expect(vmaAt(child, 0).anonVma).toBeNull();
    expect(vmaIsForkChild(vmaAt(child, 2))).toBe(true);
    // is_mergeable_anon_vma() case 1: the target has no anon_vma and will share the range's.
    expect(mprotectSync(mm, A + 2 * P, 2 * P, RW).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-4 rw-p']);
    expect(vmaAt(mm, 0).anonVma).not.toBeNull();
    // In the child the range's anon_vma chain also links the parent's: it may not spread to another VMA.
    expect(mprotectSync(child, A + 2 * P, 2 * P, RW).ok).toBe(true);
    expect(maps(child)).toEqual(['0-2 rw-p', '2-4 rw-p']);
    expect(vmaAt(child, 0).anonVma).toBeNull();
    checkMmInvariants([mm, child]);
  });

  it('a range copied from a fork child (mremap) does not join an unfaulted VMA; one copied from the parent does', () => {
    const { mm } = makeSystem();
    anon(mm, 0, 2);
    anon(mm, 4, 2);
    touch(mm, A + 4 * P);
    const child = forkSync(mm);
    const copied = (m: MmStruct) => {
      const prev = vmaAt(m, 0);
      const src = vmaAt(m, 4);
      return {
        prev,
        middle: null,
        next: null,
        start: A + 2 * P,
        end: A + 3 * P,
        pgoff: prev.vmPgoff + 2,
        flags: prev.vmFlags,
        file: null,
        ops: null,
        anonVma: src.anonVma,
        copiedFrom: src,
      };
    };
    expect(runSync(vmaMergeNewRange(child, copied(child)))).toBeNull();
    expect(maps(child)).toEqual(['0-2 rw-p', '4-6 rw-p']);
    const prev = vmaAt(mm, 0);
    expect(runSync(vmaMergeNewRange(mm, copied(mm)))).toBe(prev);
    expect(maps(mm)).toEqual(['0-3 rw-p', '4-6 rw-p']);
    expect(prev.anonVma).toBe(vmaAt(mm, 4).anonVma);
  });

  it('a new range between two VMAs merges with both when at most one has an anon_vma, or both share it', () => {
    for (const faulted of ['before', 'after', 'both'] as const) {
      const { mm } = makeSystem();
      if (faulted === 'both') {
        // One faulted VMA cut in two: both halves share its anon_vma.
        anon(mm, 0, 5);
        touch(mm, A);
        munmapSync(mm, A + P, 2 * P);
        expect(vmaAt(mm, 0).anonVma).toBe(vmaAt(mm, 3).anonVma);
      } else {
        anon(mm, 0, 1);
        anon(mm, 3, 2);
        touch(mm, faulted === 'before' ? A : A + 3 * P);
      }
      expect(maps(mm)).toEqual(['0-1 rw-p', '3-5 rw-p']);
      const av = vmaAt(mm, faulted === 'after' ? 3 : 0).anonVma;
      expect(av).not.toBeNull();
      anon(mm, 1, 2);
      expect(maps(mm), faulted).toEqual(['0-5 rw-p']);
      expect(vmaAt(mm, 0).anonVma).toBe(av);
      // dup_anon_vma() only when the target has none: one chain link, so it still merges like a parent's VMA.
      expect(vmaAt(mm, 0).anonVmaChain.length, faulted).toBe(1);
      expect(vmaIsForkChild(vmaAt(mm, 0))).toBe(false);
      checkMmInvariants([mm]);
    }
  });
});

describe('commitVmaChanges write-locks every VMA it touches (vma_start_write)', () => {
  it('the changed, the removed and the inserted VMAs carry the current mm_lock_seq', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 4, 2, PROT_READ);
    const a = vmaAt(mm, 0);
    const b = vmaAt(mm, 4);
    const n = vmAreaDup(a);
    n.vmStart = A + 10 * P;
    n.vmEnd = A + 11 * P;
    const seq = mm.mmLockSeq.value;
    for (const v of [a, b, n]) expect(v.vmLockSeq.value).not.toBe(seq);
    runSync(commitVmaChanges(mm, [{ vma: a, start: A, end: A + 3 * P, pgoff: A / P }], [b], [n]));
    expect([a, b, n].map((v) => v.vmLockSeq.value)).toEqual([seq, seq, seq]);
  });
});

describe("commitVmaChanges' vm_sequence sections (vma_prepare/vma_complete, SPF v12's keep_locked)", () => {
  /** A VMA at pages 0-2 to grow to 0-3, a VMA at 4-6 to remove, and a new one for 10-11. */
  function setup() {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 4, 2, PROT_READ);
    const a = vmaAt(mm, 0);
    const b = vmaAt(mm, 4);
    const n = vmAreaDup(a);
    n.vmStart = A + 10 * P;
    n.vmEnd = A + 11 * P;
    return { mm, a, b, n };
  }

  it('each range store and the detach mark is one write made inside the sections, which all close after', () => {
    const { mm, a, b, n } = setup();
    const [sa, sb] = [a.vmSequence.peek(), b.vmSequence.peek()];
    const seen: RecordedEffect<[number, number, number]>[] = [];
    const change = { vma: a, start: A + P, end: A + 3 * P, pgoff: A / P + 1 };
    runSync(
      recordEffects(
        commitVmaChanges(mm, [change], [b], [n]),
        () => [a.vmSequence.peek(), b.vmSequence.peek(), n.vmSequence.peek()],
        seen,
      ),
    );
    const stores = seen
      // (vma_start_write()'s unlabelled store of vm_lock_seq is on the same line, before the sections.)
      .filter(
        (e) =>
          e.kind === EffectKind.Write && e.label !== undefined && (e.line === a.line || e.line === b.line),
      )
      .map((e) => [e.line === a.line ? 'a' : 'b', e.label, e.at]);
    // vma_set_range(): vm_start, vm_end, vm_pgoff in turn, with a and b both inside their sections; then
    // vma_mark_detached() of b. A new VMA is not in a section: nobody can see it before it is linked.
    expect(stores).toEqual([
      ['a', 'WRITE_ONCE(vm_start)', [sa + 1, sb + 1, 0]],
      ['a', 'WRITE_ONCE(vm_end)', [sa + 1, sb + 1, 0]],
      ['a', 'WRITE_ONCE(vm_pgoff)', [sa + 1, sb + 1, 0]],
      ['b', 'vma_mark_detached', [sa + 1, sb + 1, 0]],
    ]);
    expect([a.vmSequence.peek(), b.vmSequence.peek(), n.vmSequence.peek()]).toEqual([sa + 2, sb + 2, 0]);
    expect(maps(mm)).toEqual(['1-3 rw-p', '10-11 rw-p']);
  });

  it('with keepLocked the changed and the inserted VMAs stay in their sections (the inserted one enters before it is linked); the removed one closes', () => {
    const { mm, a, b, n } = setup();
    const [sa, sb] = [a.vmSequence.peek(), b.vmSequence.peek()];
    const seen: RecordedEffect<number>[] = [];
    const linked = () => mm.findVma(A + 10 * P) === n;
    runSync(
      recordEffects(
        commitVmaChanges(mm, [{ vma: a, start: A, end: A + 3 * P, pgoff: A / P }], [b], [n], true),
        () => (linked() ? -1 : n.vmSequence.peek()),
        seen,
      ),
    );
    expect([a.vmSequence.peek(), b.vmSequence.peek(), n.vmSequence.peek()]).toEqual([sa + 1, sb + 2, 1]);
    // The new VMA's section was open at the last effect before it was in the tree.
    const before = seen.filter((e) => e.at !== -1);
    expect(before.length).toBeLessThan(seen.length);
    expect(before[before.length - 1]?.at).toBe(1);
    runSync(vmWriteEnd(a));
    runSync(vmWriteEnd(n));
    expect([a.vmSequence.peek(), n.vmSequence.peek()]).toEqual([sa + 2, 2]);
    checkMmInvariants([mm]);
  });

  it('vma_merge_new_range() with keepLocked returns the expanded VMA still in its section; without, closed', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 6, 2);
    const prev = vmaAt(mm, 0);
    const next = vmaAt(mm, 6);
    const vmg = {
      prev,
      middle: null,
      next,
      start: A + 2 * P,
      end: A + 3 * P,
      pgoff: A / P + 2,
      flags: prev.vmFlags,
      file: null,
      ops: null,
      anonVma: null,
    };
    const s0 = prev.vmSequence.peek();
    expect(runSync(vmaMergeNewRange(mm, { ...vmg, keepLocked: true }))).toBe(prev);
    expect(prev.vmSequence.peek()).toBe(s0 + 1);
    runSync(vmWriteEnd(prev));
    const s1 = next.vmSequence.peek();
    expect(
      runSync(
        vmaMergeNewRange(mm, { ...vmg, prev: null, start: A + 5 * P, end: A + 6 * P, pgoff: A / P + 5 }),
      ),
    ).toBe(next);
    expect(next.vmSequence.peek()).toBe(s1 + 2);
    expect(maps(mm)).toEqual(['0-3 rw-p', '5-8 rw-p']);
  });
});

describe('merges that must not happen, and vma_modify() splits', () => {
  it('never merges VM_SPECIAL VMAs, even with neighbours that have the very same flags (a driver mapping)', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2);
    anon(mm, 3, 2);
    anon(mm, 5, 3, PROT_READ);
    for (const p of [0, 3, 5]) vmaAt(mm, p).vmFlags |= VM_IO; // as remap_pfn_range() sets it
    const prev = vmaAt(mm, 0);
    const next = vmaAt(mm, 3);
    const vmg = {
      prev,
      middle: null,
      next,
      start: A + 2 * P,
      end: A + 3 * P,
      pgoff: (A + 2 * P) / P,
      flags: prev.vmFlags,
      file: null,
      ops: null,
      anonVma: null,
    };
    expect(runSync(vmaMergeNewRange(mm, vmg))).toBeNull();
    expect(runSync(vmaMergeNewRange(mm, { ...vmg, next: null }))).toBeNull();
    expect(runSync(vmaMergeNewRange(mm, { ...vmg, prev: null }))).toBeNull();
    // An existing VM_IO VMA whose flags become its VM_IO neighbour's: vma_merge_existing_range() refuses too.
    const middle = vmaAt(mm, 5);
    const flags = prev.vmFlags;
    expect(maps(mm)).toEqual(['0-2 rw-p', '3-5 rw-p', '5-8 r--p']);
    expect(
      runSync(vmaMergeExistingRange(mm, vmgForExisting(next, middle, A + 5 * P, A + 8 * P, flags))),
    ).toBeNull();
    expect(
      runSync(vmaMergeExistingRange(mm, vmgForExisting(next, middle, A + 5 * P, A + 6 * P, flags))),
    ).toBeNull();
    expect(maps(mm)).toEqual(['0-2 rw-p', '3-5 rw-p', '5-8 r--p']);
  });

  it('a whole VMA changed to match only the VMA after it is removed into that one', () => {
    const mm = new MmStruct();
    anon(mm, 0, 2, PROT_READ | PROT_EXEC);
    anon(mm, 2, 2);
    anon(mm, 4, 2, PROT_READ);
    const middle = vmaAt(mm, 2);
    const next = vmaAt(mm, 4);
    expect(mprotectSync(mm, A + 2 * P, 2 * P, PROT_READ).ok).toBe(true);
    expect(maps(mm)).toEqual(['0-2 r-xp', '2-6 r--p']);
    expect(vmaAt(mm, 2)).toBe(next);
    expect(next.vmPgoff).toBe((A + 2 * P) / P);
    expect(middle.detached).toBe(true);
    expect(mm.mapCount).toBe(2);
    checkMmInvariants([mm]);
  });

  it('vma_modify_flags() fails with ENOMEM when a split exceeds max_map_count, keeping the split it made', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    anon(mm, 0, 4);
    anon(mm, 6, 1);
    const v = vmaAt(mm, 0);
    // No split possible: the range keeps its flags.
    expect(runSync(vmaModifyFlags(mm, null, v, A + P, A + 2 * P, v.vmFlags & ~VM_WRITE))).toBe(Errno.ENOMEM);
    expect(maps(mm)).toEqual(['0-4 rw-p', '6-7 rw-p']);
    expect(runSync(vmaModifyFlags(mm, null, v, A + 3 * P, A + 4 * P, v.vmFlags & ~VM_WRITE))).toBe(
      Errno.ENOMEM,
    );
    expect(runSync(vmaModifyFlags(mm, null, v, A, A + P, v.vmFlags & ~VM_WRITE))).toBe(Errno.ENOMEM);
    // One split allowed: the split below `start` is made, the one at `end` fails, as Linux's vma_modify().
    expect(munmapSync(mm, A + 6 * P, P).ok).toBe(true);
    expect(runSync(vmaModifyFlags(mm, null, v, A + P, A + 2 * P, v.vmFlags & ~VM_WRITE))).toBe(Errno.ENOMEM);
    expect(maps(mm)).toEqual(['0-1 rw-p', '1-4 rw-p']);
    expect(mm.mapCount).toBe(2);
    checkMmInvariants([mm]);
  });
});
