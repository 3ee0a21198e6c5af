import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MM_ANONPAGES, MmStruct } from './mm-struct.js';
import { procMaps } from './proc-maps.js';
import { madviseSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';
import type { MmapFile } from './mmap.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

function map(mm: MmStruct, page: number, pages: number, prot = RW, shared = false) {
  const flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  const r = mmapSync(mm, { addr: A + page * P, len: pages * P, prot, flags });
  if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
}
/** maps lines relative to the arena, in pages, like the replay format of issue 6. */
function maps(mm: MmStruct): string[] {
  return [...mm.vmas()].map(
    (v) => `${(v.vmStart - A) / P}-${(v.vmEnd - A) / P} ${v.perms()} ${v.vmFile ? v.vmPgoff : 0}`,
  );
}
function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
}

describe('munmap', () => {
  it('splits a VMA around a hole, zaps the pages, updates RSS and frees the page tables', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 5);
    touch(mm, A, 5 * P);
    expect(mm.rss[MM_ANONPAGES]).toBe(5);
    const freeBefore = mem.freeCount;
    expect(munmapSync(mm, A + P, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-1 rw-p 0', '3-5 rw-p 0']);
    expect(present(mm)).toEqual([0, 3, 4]);
    expect(mm.rss[MM_ANONPAGES]).toBe(3);
    expect(mem.freeCount).toBe(freeBefore + 2);
    checkMmInvariants([mm]);
    munmapSync(mm, A, 5 * P);
    expect(mm.mapCount).toBe(0);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    // The page table, page directory and PDPT that only served the arena are gone too.
    expect(mm.pgd.tables.slice(1, 4)).toEqual([0, 0, 0]);
  });

  it('rejects unaligned starts, zero lengths and ranges past TASK_SIZE with EINVAL; holes are fine', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    expect(munmapSync(mm, A + 1, P)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(munmapSync(mm, A, 0)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(munmapSync(mm, 0x7ffffffff000, 2 * P)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(munmapSync(mm, A + 10 * P, P)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-2 rw-p 0']);
    expect(munmapSync(mm, A + P, 1)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-1 rw-p 0']);
  });

  it('fails with ENOMEM, changing nothing, when punching a hole would exceed max_map_count', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    map(mm, 0, 3);
    map(mm, 10, 3, PROT_READ);
    expect(munmapSync(mm, A + P, P)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(maps(mm)).toEqual(['0-3 rw-p 0', '10-13 r--p 0']);
    // Trimming an end needs no new VMA and is allowed.
    expect(munmapSync(mm, A, P)).toEqual({ ok: true, value: 0 });
  });
});

describe('mprotect', () => {
  it('splits into three and merges back when the protection is restored', () => {
    const { mm } = makeSystem();
    map(mm, 0, 3);
    touch(mm, A, 3 * P);
    expect(mprotectSync(mm, A + P, P, PROT_READ)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-1 rw-p 0', '1-2 r--p 0', '2-3 rw-p 0']);
    const pte = [...mm.pageTables.presentPtes(A + P, A + 2 * P)][0];
    expect(pte.writable).toBe(false);
    checkMmInvariants([mm]);
    expect(mprotectSync(mm, A + P, P, RW)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-3 rw-p 0']);
    // The exclusive anonymous page became writable again without a fault (MM_CP_TRY_CHANGE_WRITABLE).
    expect([...mm.pageTables.presentPtes(A + P, A + 2 * P)][0].writable).toBe(true);
    checkMmInvariants([mm]);
  });

  it('keeps VM_ACCOUNT on a faulted VMA made read-only, so it no longer merges with a fresh read-only one', () => {
    const { mm } = makeSystem();
    map(mm, 0, 1);
    touch(mm, A);
    mprotectSync(mm, A, P, PROT_READ);
    map(mm, 1, 1, PROT_READ);
    expect(maps(mm)).toEqual(['0-1 r--p 0', '1-2 r--p 0']);
    // Unfaulted: VM_ACCOUNT is dropped, and the two merge.
    const mm2 = new MmStruct();
    map(mm2, 0, 1);
    mprotectSync(mm2, A, P, PROT_READ);
    map(mm2, 1, 1, PROT_READ);
    expect(maps(mm2)).toEqual(['0-2 r--p 0']);
  });

  it('applies the change up to a hole and then fails with ENOMEM, as Linux does', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    map(mm, 3, 2, PROT_READ);
    expect(mprotectSync(mm, A, 5 * P, PROT_NONE)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(maps(mm)).toEqual(['0-2 ---p 0', '3-5 r--p 0']);
    // A hole at the start changes nothing.
    expect(mprotectSync(mm, A + 2 * P, 3 * P, PROT_NONE)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(maps(mm)).toEqual(['0-2 ---p 0', '3-5 r--p 0']);
  });

  it('returns EINVAL for unaligned starts, unknown bits and both grows flags; a zero length succeeds', () => {
    const mm = new MmStruct();
    map(mm, 0, 2);
    expect(mprotectSync(mm, A + 1, P, PROT_READ)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(mprotectSync(mm, A, P, 0x40)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(mprotectSync(mm, A, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)).toEqual({
      ok: false,
      errno: Errno.EINVAL,
    });
    expect(mprotectSync(mm, A, P, PROT_READ | PROT_GROWSDOWN)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(mprotectSync(mm, A, 0, PROT_READ)).toEqual({ ok: true, value: 0 });
    expect(mprotectSync(mm, A + 10 * P, P, PROT_READ)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(maps(mm)).toEqual(['0-2 rw-p 0']);
  });

  it('PROT_GROWSDOWN extends the change down to the start of a VM_GROWSDOWN VMA', () => {
    const mm = new MmStruct();
    const r = mmapSync(mm, {
      addr: A,
      len: 4 * P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_GROWSDOWN,
    });
    expect(r.ok).toBe(true);
    expect(mprotectSync(mm, A + 2 * P, P, PROT_READ | PROT_GROWSDOWN)).toEqual({ ok: true, value: 0 });
    expect(maps(mm)).toEqual(['0-3 r--p 0', '3-4 rw-p 0']);
    expect(mprotectSync(mm, A + 10 * P, P, PROT_READ | PROT_GROWSUP)).toEqual({
      ok: false,
      errno: Errno.ENOMEM,
    });
  });

  it('refuses with EACCES to make a read-only shared file mapping writable', () => {
    const mm = new MmStruct();
    const file: MmapFile = {
      file: { path: '/etc/passwd', devMajor: 8, devMinor: 1, ino: 42 },
      ops: {},
      writable: false,
    };
    const r = mmapSync(mm, {
      addr: A,
      len: 2 * P,
      prot: PROT_READ,
      flags: MAP_SHARED | MAP_FIXED_NOREPLACE,
      file,
      offset: P,
    });
    expect(r.ok).toBe(true);
    expect(mprotectSync(mm, A, P, RW)).toEqual({ ok: false, errno: Errno.EACCES });
    expect(mprotectSync(mm, A, P, PROT_READ | PROT_EXEC)).toEqual({ ok: true, value: 0 });
    expect(procMaps(mm).split('\n')[0]).toBe(
      '100000000000-100000001000 r-xs 00001000 08:01 42                         /etc/passwd',
    );
  });
});

describe('madvise', () => {
  it('MADV_DONTNEED zaps the pages but keeps the VMA; holes give ENOMEM after the mapped part', () => {
    const { mm } = makeSystem();
    map(mm, 0, 2);
    map(mm, 3, 1);
    touch(mm, A, 2 * P);
    touch(mm, A + 3 * P);
    expect(madviseSync(mm, A, 4 * P, MADV_DONTNEED)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(present(mm)).toEqual([]);
    expect(maps(mm)).toEqual(['0-2 rw-p 0', '3-4 rw-p 0']);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect(madviseSync(mm, A + 1, P, MADV_DONTNEED)).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(madviseSync(mm, A, P, 7)).toEqual({ ok: false, errno: Errno.EINVAL }); // no such advice
    expect(madviseSync(mm, A, 0, MADV_DONTNEED)).toEqual({ ok: true, value: 0 });
    checkMmInvariants([mm]);
  });

  it('MADV_DONTNEED refuses VM_LOCKED mappings with EINVAL', () => {
    const mm = new MmStruct();
    mmapSync(mm, {
      addr: A,
      len: P,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_LOCKED,
    });
    expect(madviseSync(mm, A, P, MADV_DONTNEED)).toEqual({ ok: false, errno: Errno.EINVAL });
  });
});
