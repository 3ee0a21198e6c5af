import { runSync } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import { describe, expect, it, vi } from 'vitest';
import { Errno } from './errno.js';
import {
  MADV_COLD,
  MADV_COLLAPSE,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
  MADV_HUGEPAGE,
  MADV_HWPOISON,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_REMOVE,
  MADV_SOFT_OFFLINE,
  MADV_UNMERGEABLE,
  MADV_WIPEONFORK,
  madviseBehavior,
  madviseNeedMmapWrite,
  sysMadvise,
} from './madvise.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MM_ANONPAGES, type MmStruct } from './mm-struct.js';
import type { MmapFile } from './mmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { forkSync, madviseSync, mmapSync } from './sync-api.js';
import { makeSystem, touch, pageStates } from './test-support/system.js';
import {
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_NOHUGEPAGE,
  VM_RAND_READ,
  VM_SEQ_READ,
  VM_WIPEONFORK,
  vmFlagsString,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const OK = { ok: true, value: 0 };
const err = (errno: number) => ({ ok: false, errno });

function map(mm: MmStruct, page: number, n: number, opts: { prot?: number; flags?: number } = {}) {
  const flags = (opts.flags ?? MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  const r = mmapSync(mm, { addr: A + page * P, len: n * P, prot: opts.prot ?? RW, flags });
  if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
}
/** VMAs relative to the arena, in pages, with the madvise flags they carry. */
function vmas(mm: MmStruct): string[] {
  const names: [number, string][] = [
    [VM_RAND_READ, 'rand'],
    [VM_SEQ_READ, 'seq'],
    [VM_DONTCOPY, 'dontcopy'],
    [VM_WIPEONFORK, 'wipe'],
    [VM_DONTDUMP, 'dontdump'],
    [VM_HUGEPAGE, 'huge'],
    [VM_NOHUGEPAGE, 'nohuge'],
  ];
  return [...mm.vmas()].map((v) => {
    const f = names.filter(([bit]) => v.vmFlags & bit).map(([, n]) => n);
    return `${(v.vmStart - A) / P}-${(v.vmEnd - A) / P}${f.length ? ` ${f.join(',')}` : ''}`;
  });
}
function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
}
function pageAt(mm: MmStruct, addr: number): Page {
  return [...mm.pageTables.presentPtes(addr, addr + P)][0].page as Page;
}
/** Everything about the mm a failed call must leave alone. */
function snapshot(mm: MmStruct) {
  return { maps: procMaps(mm), vmas: vmas(mm), present: present(mm), mapCount: mm.mapCount };
}

describe('madvise: arguments, in Linux order', () => {
  it('refuses unknown advice, unaligned starts and wrapping lengths with EINVAL, changing nothing', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    const before = snapshot(mm);
    for (const bad of [5, 6, 7, 26, 99, 104, -1, 1.5, Number.NaN]) {
      expect(madviseSync(mm, A, P, bad), `advice ${bad}`).toEqual(err(Errno.EINVAL));
      expect(runSync(sysMadvise(mm, A, P, bad))).toEqual(err(Errno.EINVAL));
    }
    expect(madviseSync(mm, A + 1, P, MADV_DONTNEED)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A + 1, P, MADV_RANDOM)).toEqual(err(Errno.EINVAL));
    // A length beyond any unsigned long this model represents (PAGE_ALIGN would wrap), or negative.
    expect(madviseSync(mm, A, 2 ** 64, MADV_RANDOM)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A, -P, MADV_RANDOM)).toEqual(err(Errno.EINVAL));
    // A huge but representable range past the VMAs is valid: ENOMEM for the unmapped part.
    expect(madviseSync(mm, 2 ** 52, 2 ** 52, MADV_RANDOM)).toEqual(err(Errno.ENOMEM));
    // len == 0 succeeds, but only once the advice and the start were found valid.
    expect(madviseSync(mm, A, 0, MADV_RANDOM)).toEqual(OK);
    expect(madviseSync(mm, A + 3 * P, 0, MADV_DONTFORK)).toEqual(OK);
    expect(madviseSync(mm, A, 0, 7)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A + 1, 0, MADV_RANDOM)).toEqual(err(Errno.EINVAL));
    expect(runSync(sysMadvise(mm, A + 1, 0, MADV_RANDOM))).toEqual(err(Errno.EINVAL));
    expect(runSync(sysMadvise(mm, A, 0, MADV_RANDOM))).toEqual(OK);
    expect(snapshot(mm)).toEqual(before);
    checkMmInvariants([mm]);
  });

  it('values Linux accepts but this model cannot honour are refused with EINVAL, never pretended', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const before = snapshot(mm);
    for (const advice of [
      MADV_MERGEABLE,
      MADV_UNMERGEABLE,
      MADV_POPULATE_READ,
      MADV_POPULATE_WRITE,
      MADV_COLLAPSE,
      MADV_HWPOISON,
      MADV_SOFT_OFFLINE,
      MADV_GUARD_INSTALL,
      MADV_GUARD_REMOVE,
    ]) {
      expect(madviseBehavior(advice)?.support, `${advice}`).toBe('not-modelled');
      expect(madviseSync(mm, A, 2 * P, advice), `${madviseBehavior(advice)?.name}`).toEqual(
        err(Errno.EINVAL),
      );
    }
    // Refused as an unknown advice is (madvise_behavior_valid() on a kernel without the feature): before
    // the len == 0 shortcut and before the walk could report a hole as ENOMEM.
    for (const advice of [MADV_MERGEABLE, MADV_POPULATE_WRITE, MADV_GUARD_INSTALL]) {
      expect(madviseSync(mm, A, 0, advice), `${advice} len 0`).toEqual(err(Errno.EINVAL));
      expect(runSync(sysMadvise(mm, A, 0, advice)), `${advice} len 0`).toEqual(err(Errno.EINVAL));
      expect(madviseSync(mm, A + 100 * P, P, advice), `${advice} unmapped`).toEqual(err(Errno.EINVAL));
    }
    expect(snapshot(mm)).toEqual(before);
  });

  it('describes every Linux advice value, and only those', () => {
    const linux = [0, 1, 2, 3, 4, ...Array.from({ length: 18 }, (_, i) => 8 + i), 100, 101, 102, 103];
    for (const a of linux) expect(madviseBehavior(a), `${a}`).not.toBeNull();
    for (const a of [5, 6, 7, 26, 104, -1]) expect(madviseBehavior(a)).toBeNull();
    expect(madviseBehavior(MADV_RANDOM)).toMatchObject({ name: 'MADV_RANDOM', support: 'modelled' });
    expect(madviseBehavior(MADV_FREE)?.support).toBe('validated');
    // madvise_need_mmap_write(): vm_flags advice (and anything unknown) writes; the rest reads.
    for (const a of [MADV_NORMAL, MADV_RANDOM, MADV_DONTFORK, MADV_WIPEONFORK, MADV_HUGEPAGE, MADV_DODUMP, 7])
      expect(madviseNeedMmapWrite(a), `${a}`).toBe(true);
    for (const a of [MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE, MADV_WILLNEED, MADV_REMOVE, MADV_COLD])
      expect(madviseNeedMmapWrite(a), `${a}`).toBe(false);
  });

  it('sysMadvise takes the mmap lock for writing for vm_flags advice and for reading otherwise', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    const write = vi.spyOn(mm, 'mmapWriteLock');
    const read = vi.spyOn(mm, 'mmapReadLock');
    expect(runSync(sysMadvise(mm, A, P, MADV_DONTNEED))).toEqual(OK);
    expect([read.mock.calls.length, write.mock.calls.length]).toEqual([1, 0]);
    expect(runSync(sysMadvise(mm, A, P, MADV_RANDOM))).toEqual(OK);
    expect([read.mock.calls.length, write.mock.calls.length]).toEqual([1, 1]);
    // Invalid arguments and len == 0 return before any lock is taken.
    expect(runSync(sysMadvise(mm, A, P, 7))).toEqual(err(Errno.EINVAL));
    expect(runSync(sysMadvise(mm, A, 0, MADV_RANDOM))).toEqual(OK);
    expect([read.mock.calls.length, write.mock.calls.length]).toEqual([1, 1]);
  });
});

describe('madvise: vm_flags advice splits and merges VMAs like mprotect', () => {
  it('MADV_RANDOM on the middle of a VMA splits it in three; MADV_NORMAL merges it back', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    expect(madviseSync(mm, A + P, 2 * P, MADV_RANDOM)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-1', '1-3 rand', '3-4']);
    expect(mm.mapCount).toBe(3);
    expect(procMaps(mm).split('\n').slice(0, -1)).toEqual([
      '100000000000-100000001000 rw-p 00000000 00:00 0 ',
      '100000001000-100000003000 rw-p 00000000 00:00 0 ',
      '100000003000-100000004000 rw-p 00000000 00:00 0 ',
    ]);
    // The pages stay where they were.
    expect(present(mm)).toEqual([0, 1, 2, 3]);
    checkMmInvariants([mm]);
    expect(madviseSync(mm, A + P, 2 * P, MADV_NORMAL)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-4']);
    expect(mm.mapCount).toBe(1);
    checkMmInvariants([mm]);
  });

  it('advice next to a VMA that already has it merges into that neighbour (vma_merge_existing_range)', () => {
    const { mm } = makeSystem();
    map(mm, 0, 4);
    expect(madviseSync(mm, A, P, MADV_SEQUENTIAL)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-1 seq', '1-4']);
    const left = mm.vmaLookup(A);
    expect(madviseSync(mm, A + P, P, MADV_SEQUENTIAL)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-2 seq', '2-4']);
    expect(mm.vmaLookup(A + P)).toBe(left);
    // From the right: the tail joins the next VMA.
    expect(madviseSync(mm, A + 3 * P, P, MADV_SEQUENTIAL)).toEqual(OK);
    expect(madviseSync(mm, A + 2 * P, P, MADV_SEQUENTIAL)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-4 seq']);
    checkMmInvariants([mm]);
  });

  it('RANDOM and SEQUENTIAL exclude each other; NORMAL clears both', () => {
    const { mm } = makeSystem();
    map(mm, 0, 1);
    madviseSync(mm, A, P, MADV_RANDOM);
    expect(vmas(mm)).toEqual(['0-1 rand']);
    madviseSync(mm, A, P, MADV_SEQUENTIAL);
    expect(vmas(mm)).toEqual(['0-1 seq']);
    madviseSync(mm, A, P, MADV_RANDOM);
    expect(vmas(mm)).toEqual(['0-1 rand']);
    madviseSync(mm, A, P, MADV_NORMAL);
    expect(vmas(mm)).toEqual(['0-1']);
  });

  it('HUGEPAGE and NOHUGEPAGE exclude each other and show in smaps VmFlags; DONTDUMP/DODUMP toggle', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    expect(madviseSync(mm, A, 2 * P, MADV_HUGEPAGE)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-2 huge']);
    expect(madviseSync(mm, A + P, P, MADV_NOHUGEPAGE)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-1 huge', '1-2 nohuge']);
    expect(vmFlagsString(mm.vmaLookup(A)?.vmFlags ?? 0).split(' ')).toContain('hg');
    expect(vmFlagsString(mm.vmaLookup(A + P)?.vmFlags ?? 0).split(' ')).toContain('nh');
    expect(madviseSync(mm, A, 2 * P, MADV_DONTDUMP)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-1 dontdump,huge', '1-2 dontdump,nohuge']);
    expect(madviseSync(mm, A, 2 * P, MADV_DODUMP)).toEqual(OK);
    expect(madviseSync(mm, A, 2 * P, MADV_HUGEPAGE)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-2 huge']);
    checkMmInvariants([mm]);
  });

  it('SEQUENTIAL and RANDOM show in smaps VmFlags as sr and rr, in bit order after io', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    expect(madviseSync(mm, A, P, MADV_SEQUENTIAL)).toEqual(OK);
    expect(madviseSync(mm, A + P, P, MADV_RANDOM)).toEqual(OK);
    expect(vmFlagsString(mm.vmaLookup(A)?.vmFlags ?? 0)).toBe('rd wr mr mw me sr ac sd');
    expect(vmFlagsString(mm.vmaLookup(A + P)?.vmFlags ?? 0)).toBe('rd wr mr mw me rr ac sd');
  });

  it('applies to every VMA of the range, and a hole gives ENOMEM after the mapped parts were advised', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 2, 2, { prot: PROT_READ }); // different protection: never merges with the first
    map(mm, 5, 2);
    expect(madviseSync(mm, A + P, 5 * P, MADV_DONTFORK)).toEqual(err(Errno.ENOMEM));
    expect(vmas(mm)).toEqual(['0-1', '1-2 dontcopy', '2-4 dontcopy', '5-6 dontcopy', '6-7']);
    // A range that starts in a hole and ends in one: ENOMEM, the VMA in between advised.
    expect(madviseSync(mm, A + 4 * P, 4 * P, MADV_DOFORK)).toEqual(err(Errno.ENOMEM));
    expect(vmas(mm)).toEqual(['0-1', '1-2 dontcopy', '2-4 dontcopy', '5-7']);
    // Nothing mapped at all: ENOMEM, nothing changes.
    const before = snapshot(mm);
    expect(madviseSync(mm, A + 100 * P, P, MADV_RANDOM)).toEqual(err(Errno.ENOMEM));
    expect(snapshot(mm)).toEqual(before);
    checkMmInvariants([mm]);
  });

  it('a split beyond max_map_count fails with EAGAIN (madvise converts ENOMEM) and changes nothing', () => {
    const { mm } = makeSystem({ maxMapCount: 1 });
    map(mm, 0, 4);
    const before = snapshot(mm);
    expect(madviseSync(mm, A + P, P, MADV_RANDOM)).toEqual(err(Errno.EAGAIN));
    expect(snapshot(mm)).toEqual(before);
    // Advice on the whole VMA needs no split.
    expect(madviseSync(mm, A, 4 * P, MADV_RANDOM)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-4 rand']);
  });

  it('advice a VMA already has changes nothing: no split, even with no map_count left for one', () => {
    const { mm } = makeSystem({ maxMapCount: 1 });
    map(mm, 0, 4);
    expect(madviseSync(mm, A, 4 * P, MADV_RANDOM)).toEqual(OK);
    const vma = mm.vmaLookup(A);
    // madvise_update_vma(): new_flags == vm_flags returns at once, so neither a split nor EAGAIN.
    expect(madviseSync(mm, A + P, 2 * P, MADV_RANDOM)).toEqual(OK);
    expect(madviseSync(mm, A + P, P, MADV_DONTFORK)).toEqual(err(Errno.EAGAIN));
    expect(vmas(mm)).toEqual(['0-4 rand']);
    expect(mm.mapCount).toBe(1);
    expect(mm.vmaLookup(A + 2 * P)).toBe(vma);
    checkMmInvariants([mm]);
  });

  it('a split the file refuses (vm_ops->may_split) fails with that EINVAL, not EAGAIN, and changes nothing', () => {
    const { mm } = makeSystem();
    const file: MmapFile = {
      file: { path: '/dev/x', devMajor: 8, devMinor: 1, ino: 11 },
      ops: { maySplit: (_v, addr) => (addr === A + 2 * P ? -22 : 0) },
    };
    expect(mmapSync(mm, { addr: A, len: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE, file }).ok).toBe(true);
    const before = snapshot(mm);
    // madvise_vma_behavior() turns only ENOMEM into EAGAIN; __split_vma() passes may_split's error on.
    expect(madviseSync(mm, A, 2 * P, MADV_RANDOM)).toEqual(err(Errno.EINVAL));
    expect(snapshot(mm)).toEqual(before);
    expect(madviseSync(mm, A + P, 3 * P, MADV_RANDOM)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-1', '1-4 rand']);
  });

  it('a range that ends in a hole stops there: the VMA after the hole is not advised', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 4, 2);
    map(mm, 8, 2);
    // [0, 3): the walk reaches the VMA at 4, past the end: ENOMEM, that VMA untouched.
    expect(madviseSync(mm, A, 3 * P, MADV_DONTFORK)).toEqual(err(Errno.ENOMEM));
    expect(vmas(mm)).toEqual(['0-2 dontcopy', '4-6', '8-10']);
    // [4, 8): ends exactly where the next VMA starts, after a hole.
    expect(madviseSync(mm, A + 4 * P, 4 * P, MADV_DONTDUMP)).toEqual(err(Errno.ENOMEM));
    expect(vmas(mm)).toEqual(['0-2 dontcopy', '4-6 dontdump', '8-10']);
    expect(mm.mapCount).toBe(3);
    checkMmInvariants([mm]);
  });

  it('DOFORK on a VM_IO VMA and DODUMP on a VM_SPECIAL one are EINVAL; earlier VMAs keep their advice', () => {
    const { mm } = makeSystem();
    map(mm, 0, 1);
    map(mm, 1, 1, { prot: PROT_READ });
    madviseSync(mm, A, 2 * P, MADV_DONTFORK);
    madviseSync(mm, A, 2 * P, MADV_DONTDUMP);
    const io = mm.vmaLookup(A + P);
    if (io === null) throw new Error('no VMA');
    io.vmFlags |= VM_IO; // as a driver's mmap (remap_pfn_range) would set it
    expect(madviseSync(mm, A + P, P, MADV_DOFORK)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A + P, P, MADV_DODUMP)).toEqual(err(Errno.EINVAL));
    expect(vmas(mm)).toEqual(['0-1 dontcopy,dontdump', '1-2 dontcopy,dontdump']);
    // Linux applies the advice VMA by VMA: the first VMA is changed before the second one fails.
    expect(madviseSync(mm, A, 2 * P, MADV_DOFORK)).toEqual(err(Errno.EINVAL));
    expect(vmas(mm)).toEqual(['0-1 dontdump', '1-2 dontcopy,dontdump']);
  });

  it('WIPEONFORK is for private anonymous VMAs only; KEEPONFORK clears it', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 4, 1, { flags: MAP_SHARED });
    const file: MmapFile = { file: { path: '/data', devMajor: 8, devMinor: 1, ino: 7 }, ops: {} };
    const r = mmapSync(mm, { addr: A + 8 * P, len: P, prot: RW, flags: MAP_PRIVATE, file });
    expect(r.ok).toBe(true);
    const before = snapshot(mm);
    expect(madviseSync(mm, A + 4 * P, P, MADV_WIPEONFORK)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A + 8 * P, P, MADV_WIPEONFORK)).toEqual(err(Errno.EINVAL));
    expect(snapshot(mm)).toEqual(before);
    expect(madviseSync(mm, A, P, MADV_WIPEONFORK)).toEqual(OK);
    expect(vmas(mm).slice(0, 2)).toEqual(['0-1 wipe', '1-2']);
    expect(madviseSync(mm, A, P, MADV_KEEPONFORK)).toEqual(OK);
    expect(vmas(mm).slice(0, 1)).toEqual(['0-2']);
  });
});

describe('madvise and fork', () => {
  it('after MADV_DONTFORK the child has no VMA there; the parent keeps its pages and references', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 4);
    touch(mm, A, 4 * P);
    expect(madviseSync(mm, A + P, 2 * P, MADV_DONTFORK)).toEqual(OK);
    const child = forkSync(mm, PagetableOps.factory({ mem }));
    expect(vmas(child)).toEqual(['0-1', '3-4']);
    expect(present(child)).toEqual([0, 3]);
    expect(child.vmaLookup(A + P)).toBeNull();
    expect(present(mm)).toEqual([0, 1, 2, 3]);
    expect([pageAt(mm, A + P).refcount, pageAt(mm, A + P).mapcount]).toEqual([1, 1]);
    expect([pageAt(mm, A).refcount, pageAt(mm, A).mapcount]).toEqual([2, 2]);
    checkMmInvariants([mm, child], pageStates);
    // MADV_DOFORK undoes it for the next fork.
    expect(madviseSync(mm, A, 4 * P, MADV_DOFORK)).toEqual(OK);
    expect(vmas(mm)).toEqual(['0-4']);
    const child2 = forkSync(mm, PagetableOps.factory({ mem }));
    expect(vmas(child2)).toEqual(['0-4']);
    expect(present(child2)).toEqual([0, 1, 2, 3]);
  });

  it('after MADV_WIPEONFORK the child has the VMA but none of the pages: it will read zeros', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    mem.write8(pageAt(mm, A).pfn * P, 0x5a);
    expect(madviseSync(mm, A, P, MADV_WIPEONFORK)).toEqual(OK);
    const child = forkSync(mm, PagetableOps.factory({ mem }));
    expect(vmas(child)).toEqual(['0-1 wipe', '1-2']);
    expect(present(child)).toEqual([1]);
    expect(child.vmaLookup(A)?.anonVma).toBeNull();
    expect(child.rss[MM_ANONPAGES]).toBe(1);
    expect(mem.read8(pageAt(mm, A).pfn * P)).toBe(0x5a);
    expect([pageAt(mm, A).refcount, pageAt(mm, A).mapcount]).toEqual([1, 1]);
    checkMmInvariants([mm, child], pageStates);
  });
});

describe('madvise: advice that walks the pages', () => {
  it('MADV_FREE validates like Linux and keeps the contents (no reclaim to free them lazily)', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 2);
    map(mm, 2, 1, { flags: MAP_SHARED });
    touch(mm, A, 2 * P);
    mem.write8(pageAt(mm, A).pfn * P + 3, 0x77);
    expect(madviseSync(mm, A, 2 * P, MADV_FREE)).toEqual(OK);
    expect(present(mm)).toEqual([0, 1]);
    expect(mem.read8(pageAt(mm, A).pfn * P + 3)).toBe(0x77);
    // Not anonymous (a shared mapping is shmem): EINVAL, after the private part was handled.
    expect(madviseSync(mm, A + 2 * P, P, MADV_FREE)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A, 3 * P, MADV_FREE)).toEqual(err(Errno.EINVAL));
    checkMmInvariants([mm]);
  });

  it('VM_LOCKED: DONTNEED, FREE, COLD, PAGEOUT and REMOVE are EINVAL; DONTNEED_LOCKED zaps', () => {
    const { mm } = makeSystem();
    mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED });
    touch(mm, A, 2 * P);
    for (const a of [MADV_DONTNEED, MADV_FREE, MADV_COLD, MADV_PAGEOUT, MADV_REMOVE])
      expect(madviseSync(mm, A, 2 * P, a), `${madviseBehavior(a)?.name}`).toEqual(err(Errno.EINVAL));
    expect(present(mm)).toEqual([0, 1]);
    expect(madviseSync(mm, A, P, MADV_DONTNEED_LOCKED)).toEqual(OK);
    expect(present(mm)).toEqual([1]);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    checkMmInvariants([mm]);
  });

  it('VM_LOCKED: MADV_REMOVE is EINVAL even on a shared writable mapping; WILLNEED is allowed', () => {
    const { mm } = makeSystem();
    const flags = MAP_SHARED | MAP_ANONYMOUS | MAP_LOCKED;
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags }).ok).toBe(true);
    // madvise_remove() refuses VM_LOCKED before it looks at the file (shmem here, which could punch).
    expect(madviseSync(mm, A, 2 * P, MADV_REMOVE)).toEqual(err(Errno.EINVAL));
    // madvise_willneed() has no VM_LOCKED check: reading ahead into mlocked memory is fine.
    expect(madviseSync(mm, A, 2 * P, MADV_WILLNEED)).toEqual(OK);
    map(mm, 4, 1, { flags: MAP_PRIVATE | MAP_LOCKED });
    expect(madviseSync(mm, A + 4 * P, P, MADV_WILLNEED)).toEqual(OK);
  });

  it('hugetlb VMAs: FREE, COLD and PAGEOUT are EINVAL; DODUMP is allowed despite VM_DONTEXPAND', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    const vma = mm.vmaLookup(A);
    if (vma === null) throw new Error('no VMA');
    // What hugetlbfs_file_mmap() sets (this model never creates hugetlb VMAs: no huge pages are reserved).
    vma.vmFlags |= VM_HUGETLB | VM_DONTEXPAND;
    for (const a of [MADV_FREE, MADV_COLD, MADV_PAGEOUT])
      expect(madviseSync(mm, A, 2 * P, a), `${madviseBehavior(a)?.name}`).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A, 2 * P, MADV_DODUMP)).toEqual(OK);
  });

  it('MADV_DONTNEED_LOCKED on an ordinary VMA is MADV_DONTNEED', () => {
    const { mm } = makeSystem();
    map(mm, 0, 3);
    touch(mm, A, 3 * P);
    expect(madviseSync(mm, A + P, 2 * P, MADV_DONTNEED_LOCKED)).toEqual(OK);
    expect(present(mm)).toEqual([0]);
    expect(vmas(mm)).toEqual(['0-3']);
  });

  it('COLD, PAGEOUT and WILLNEED succeed on ordinary memory and leave the pages resident', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    touch(mm, A, 2 * P);
    const before = snapshot(mm);
    for (const a of [MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED])
      expect(madviseSync(mm, A, 2 * P, a)).toEqual(OK);
    expect(snapshot(mm)).toEqual(before);
    expect(madviseSync(mm, A, 3 * P, MADV_COLD)).toEqual(err(Errno.ENOMEM));
  });

  it('MADV_REMOVE: EINVAL for anonymous memory, EACCES unless shared-writable, EOPNOTSUPP for the hole punch', () => {
    const { mm } = makeSystem();
    map(mm, 0, 1);
    map(mm, 2, 1, { flags: MAP_SHARED });
    const ro: MmapFile = {
      file: { path: '/etc/passwd', devMajor: 8, devMinor: 1, ino: 42 },
      ops: {},
      writable: false,
    };
    expect(mmapSync(mm, { addr: A + 4 * P, len: P, prot: PROT_READ, flags: MAP_SHARED, file: ro }).ok).toBe(
      true,
    );
    const before = snapshot(mm);
    expect(madviseSync(mm, A, P, MADV_REMOVE)).toEqual(err(Errno.EINVAL));
    expect(madviseSync(mm, A + 4 * P, P, MADV_REMOVE)).toEqual(err(Errno.EACCES));
    expect(madviseSync(mm, A + 2 * P, P, MADV_REMOVE)).toEqual(err(Errno.EOPNOTSUPP));
    expect(snapshot(mm)).toEqual(before);
  });
});
