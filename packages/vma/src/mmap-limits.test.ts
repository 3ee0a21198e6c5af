import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { type MmapArgs, sysMmap } from './mmap.js';
import { OvercommitPolicy } from './overcommit.js';
import { procMaps } from './proc-maps.js';
import { mmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const ENOMEM = { ok: false, errno: Errno.ENOMEM };
const RAM = 1024; // pages: a 4 MiB machine

/** Maps `pages` pages at page `at` of A, MAP_FIXED. */
function fixed(mm: MmStruct, at: number, pages: number, prot = RW, flags = PRIV) {
  return mmapSync(mm, { addr: A + at * P, len: pages * P, prot, flags: flags | MAP_FIXED });
}

/** What a refused call must leave alone. */
const state = (mm: MmStruct) => ({ maps: procMaps(mm), totalVm: mm.totalVm, committed: mm.committed });

describe('mmap: the limits Linux enforces', () => {
  it('RLIMIT_AS counts every mapped page: a mapping that would pass the limit is ENOMEM, one that reaches it is not', () => {
    const mm = new MmStruct({ rlimitAs: 10 * P });
    expect(fixed(mm, 0, 8).ok).toBe(true);
    const before = state(mm);
    expect(fixed(mm, 20, 3)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    expect(fixed(mm, 20, 2).ok).toBe(true);
    expect(mm.totalVm).toBe(10);
  });

  it('MAP_FIXED over mapped pages counts only the pages it adds against RLIMIT_AS, at either end of a mapping', () => {
    const mm = new MmStruct({ rlimitAs: 10 * P });
    expect(fixed(mm, 2, 8).ok).toBe(true); // pages 2..9
    // Over the first page of the mapping and two pages before it: adds 2 (total 10).
    expect(fixed(mm, 0, 3, PROT_READ).ok).toBe(true);
    expect(mm.totalVm).toBe(10);
    // Over the last two pages and one page after them: adds 1 (11): refused, nothing changed.
    const before = state(mm);
    expect(fixed(mm, 8, 3, PROT_READ)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    // Entirely over mapped pages: adds nothing.
    expect(fixed(mm, 4, 4, PROT_READ).ok).toBe(true);
    expect(mm.totalVm).toBe(10);
    checkMmInvariants([mm]);
  });

  it('the overcommit check charges MAP_FIXED only for the pages not already charged to the mappings it replaces', () => {
    const mm = new MmStruct({ overcommit: new OvercommitPolicy({ mode: 'guess', totalRamPages: RAM }) });
    expect(fixed(mm, 0, 600).ok).toBe(true); // private writable: VM_ACCOUNT, 600 committed
    expect(fixed(mm, 2000, 600, PROT_READ).ok).toBe(true); // read-only: not accounted
    expect(mm.committed).toBe(600);
    // 1,100 pages over the 600 accounted ones: 500 new, within RAM.
    expect(fixed(mm, 0, 1100).ok).toBe(true);
    expect(mm.committed).toBe(1100);
    // Over the 600 read-only pages, 1,100 pages are all charged: more than RAM.
    const before = state(mm);
    expect(fixed(mm, 2000, 1100)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    // Partly over the end of the accounted mapping [0, 1100): 100 replaced and 1,025 new is too much.
    expect(fixed(mm, 1000, 1125)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    // Partly over the end of the accounted mapping: 100 replaced, 1,000 new (fits); 1,100 new does not.
    expect(fixed(mm, 1000, 1100)).toEqual({ ok: true, value: A + 1000 * P });
    expect(fixed(mm, 3000, 1025)).toEqual(ENOMEM);
    checkMmInvariants([mm]);
  });

  it('a MAP_FIXED that adds no commit charge is not checked against the commit limit, even when it is exhausted', () => {
    const holder: { mm: MmStruct | null } = { mm: null };
    const overcommit = new OvercommitPolicy({
      mode: 'never',
      totalRamPages: RAM,
      committedPages: () => holder.mm?.committed ?? 0,
    });
    const mm = new MmStruct({ overcommit });
    holder.mm = mm;
    // The limit: 50% of RAM (512 pages) less the admin reserve (32 pages) less the user reserve, which grows
    // with total_vm (total_vm / 32, at most 32 pages).
    expect(fixed(mm, 0, 479).ok).toBe(true);
    expect(fixed(mm, 1000, 1024, PROT_READ).ok).toBe(true); // not charged, but total_vm grows
    expect(fixed(mm, 3000, 1)).toEqual(ENOMEM); // 479 committed, 448 allowed
    // Replacing accounted pages with accounted pages charges nothing: allowed.
    expect(fixed(mm, 0, 10).ok).toBe(true);
    expect(mm.committed).toBe(479);
  });

  it('shared anonymous memory is charged (shmem_acct_size) unless MAP_NORESERVE; shared file mappings are not', () => {
    const mm = new MmStruct({ overcommit: new OvercommitPolicy({ mode: 'guess', totalRamPages: RAM }) });
    expect(fixed(mm, 0, RAM + 1, RW, MAP_SHARED | MAP_ANONYMOUS)).toEqual(ENOMEM);
    expect(fixed(mm, 0, RAM + 1, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE).ok).toBe(true);
    const file = { file: { path: '/data', devMajor: 8, devMinor: 1, ino: 7 }, ops: {} };
    expect(
      mmapSync(mm, { addr: A + 4096 * P, len: (RAM + 1) * P, prot: RW, flags: MAP_SHARED | MAP_FIXED, file }),
    ).toEqual({ ok: true, value: A + 4096 * P });
    expect(fixed(mm, 8192, RAM + 1, RW, PRIV | MAP_NORESERVE).ok).toBe(true);
    expect(fixed(mm, 16384, RAM + 1)).toEqual(ENOMEM);
  });

  it('MAP_FIXED into the middle of a mapping needs two more VMAs: refused at max_map_count, with nothing changed', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    expect(fixed(mm, 0, 10).ok).toBe(true);
    expect(fixed(mm, 20, 1).ok).toBe(true);
    expect(mm.mapCount).toBe(2);
    const before = state(mm);
    expect(fixed(mm, 4, 2, PROT_READ)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    // Replacing a whole mapping needs no split.
    expect(fixed(mm, 20, 1, PROT_READ).ok).toBe(true);
    expect(mm.mapCount).toBe(2);
    // Over the start of a mapping: one split, which vms_gather_munmap_vmas() does not check, so map_count
    // may end one above the limit (as in Linux, whose do_mmap() check is map_count > max).
    expect(fixed(mm, 0, 2, PROT_READ).ok).toBe(true);
    expect(mm.mapCount).toBe(3);
    // The same over the end of a mapping.
    const tail = new MmStruct({ maxMapCount: 2 });
    expect(fixed(tail, 0, 10).ok).toBe(true);
    expect(fixed(tail, 20, 1).ok).toBe(true);
    expect(fixed(tail, 8, 2, PROT_READ).ok).toBe(true);
    expect(tail.mapCount).toBe(3);
  });

  it('a hint is rounded down to a page and used when free; MAP_FIXED is never rounded', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A + 5 * P + 3000, len: P, prot: RW, flags: PRIV })).toEqual({
      ok: true,
      value: A + 5 * P,
    });
    expect(mmapSync(mm, { addr: A + 9 * P + 123, len: P, prot: RW, flags: PRIV | MAP_FIXED })).toEqual({
      ok: false,
      errno: Errno.EINVAL,
    });
    // A hint below mmap_min_addr is raised to it (round_hint_to_min()), but one that rounds down to 0 means
    // "anywhere" (top-down), as Linux rounds before it compares.
    const low = mmapSync(mm, { addr: P + 123, len: P, prot: RW, flags: PRIV });
    expect(low).toEqual({ ok: true, value: mm.mmapMinAddr });
    const any = mmapSync(mm, { addr: 123, len: P, prot: RW, flags: PRIV });
    expect(any.ok && any.value > A).toBe(true);
  });
});

describe('mmap: files, flags and MAP_NORESERVE', () => {
  const file = { file: { path: '/data', devMajor: 8, devMinor: 1, ino: 7 }, ops: {} };

  it('a page-aligned file offset maps from that page of the file', () => {
    const mm = new MmStruct();
    expect(
      mmapSync(mm, { addr: A, len: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 2 * P }),
    ).toEqual({ ok: true, value: A });
    expect(mm.findVma(A)?.vmPgoff).toBe(2);
    expect(procMaps(mm)).toMatch(/^100000000000-100000001000 r--p 00002000 08:01 7 +\/data\n$/);
  });

  it('without MAP_ANONYMOUS and without a file there is no open file: EBADF, nothing mapped', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: P, prot: RW, flags: MAP_PRIVATE | MAP_FIXED })).toEqual({
      ok: false,
      errno: Errno.EBADF,
    });
    expect(mm.mapCount).toBe(0);
  });

  it('MAP_PRIVATE and MAP_SHARED ignore unknown flag bits (only MAP_SHARED_VALIDATE refuses them)', () => {
    const mm = new MmStruct();
    expect(
      mmapSync(mm, { addr: A, len: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED | 0x40000000, file }),
    ).toEqual({ ok: true, value: A });
  });

  it('a shared mapping of a file not opened for writing keeps its other rights: r--s', () => {
    const mm = new MmStruct();
    const ro = { ...file, readable: true, writable: false };
    expect(
      mmapSync(mm, { addr: A, len: P, prot: PROT_READ, flags: MAP_SHARED | MAP_FIXED, file: ro }).ok,
    ).toBe(true);
    expect(procMaps(mm)).toMatch(/^100000000000-100000001000 r--s /);
  });

  it('a hint-less file mapping of a multiple of 2 MiB is not aligned for THP; an anonymous one is', () => {
    const mm = new MmStruct();
    const first = mmapSync(mm, { addr: 0, len: P, prot: RW, flags: PRIV });
    expect(first.ok).toBe(true);
    const top = first.ok ? first.value : 0;
    const f = mmapSync(mm, { addr: 0, len: 2 * 1024 * 1024, prot: PROT_READ, flags: MAP_PRIVATE, file });
    expect(f).toEqual({ ok: true, value: top - 2 * 1024 * 1024 });
    const anon = mmapSync(mm, { addr: 0, len: 2 * 1024 * 1024, prot: RW, flags: PRIV });
    expect(anon.ok && anon.value % (2 * 1024 * 1024)).toBe(0);
  });

  it('MAP_NORESERVE keeps the mapping’s rights, and is ignored under overcommit "never"', () => {
    const plain = new MmStruct();
    expect(fixed(plain, 0, 2, RW, PRIV | MAP_NORESERVE).ok).toBe(true);
    expect(procMaps(plain)).toMatch(/^100000000000-100000002000 rw-p /);
    expect(plain.committed).toBe(0);
    const never = new MmStruct({
      overcommit: new OvercommitPolicy({ mode: 'never', totalRamPages: RAM, committedPages: () => 0 }),
    });
    expect(fixed(never, 0, RAM, RW, PRIV | MAP_NORESERVE)).toEqual(ENOMEM);
    expect(fixed(never, 0, 2, RW, PRIV | MAP_NORESERVE).ok).toBe(true);
    expect(never.committed).toBe(2);
  });
});

describe('mmap(2): when it populates', () => {
  const populated = (args: Omit<MmapArgs, 'populate'>, mm = new MmStruct()) => {
    const calls: unknown[] = [];
    const r = runSync(
      sysMmap(mm, {
        ...args,
        *populate(_m, start, len, write) {
          calls.push([start, len, write]);
        },
      }),
    );
    return { r, calls };
  };

  it('populates the page-rounded length, writing only for private writable mappings', () => {
    expect(
      populated({ addr: A, len: P + 1, prot: RW, flags: PRIV | MAP_FIXED | MAP_POPULATE }).calls,
    ).toEqual([[A, 2 * P, true]]);
    expect(
      populated({ addr: A, len: P, prot: PROT_READ, flags: PRIV | MAP_FIXED | MAP_POPULATE }).calls,
    ).toEqual([[A, P, false]]);
    expect(
      populated({ addr: A, len: P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE })
        .calls,
    ).toEqual([[A, P, false]]);
  });

  it('a refused mmap populates nothing, and neither does a mapping without MAP_POPULATE or VM_LOCKED', () => {
    expect(populated({ addr: A + 1, len: P, prot: RW, flags: PRIV | MAP_FIXED | MAP_POPULATE })).toEqual({
      r: { ok: false, errno: Errno.EINVAL },
      calls: [],
    });
    expect(populated({ addr: A + 1, len: P, prot: RW, flags: PRIV | MAP_FIXED | MAP_LOCKED })).toEqual({
      r: { ok: false, errno: Errno.EINVAL },
      calls: [],
    });
    expect(populated({ addr: A, len: P, prot: RW, flags: PRIV | MAP_FIXED }).calls).toEqual([]);
  });

  it('without a populate hook MAP_POPULATE just maps', () => {
    const mm = new MmStruct();
    expect(
      runSync(sysMmap(mm, { addr: A, len: P, prot: RW, flags: PRIV | MAP_FIXED | MAP_POPULATE })),
    ).toEqual({
      ok: true,
      value: A,
    });
    expect(mm.mapCount).toBe(1);
  });
});
