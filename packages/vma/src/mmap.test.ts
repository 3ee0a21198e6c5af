import { describe, expect, it } from 'vitest';
import { runSync } from '@spf/machine';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { DEFAULT_MMAP_BASE, MmStruct } from './mm-struct.js';
import { type MmapFile, sysMmap } from './mmap.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  PROT_READ,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_SOFTDIRTY,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

function map(mm: MmStruct, addr: number, pages: number, prot = RW, flags = PRIV | MAP_FIXED_NOREPLACE) {
  return mmapSync(mm, { addr: addr < A ? addr * P : addr, len: pages * P, prot, flags });
}

describe('mmap', () => {
  it('places anonymous mappings top-down below mmap_base and merges adjacent compatible ones', () => {
    const mm = new MmStruct();
    const a = mmapSync(mm, { addr: 0, len: 2 * P, prot: RW, flags: PRIV });
    const b = mmapSync(mm, { addr: 0, len: 3 * P, prot: RW, flags: PRIV });
    expect(a).toEqual({ ok: true, value: DEFAULT_MMAP_BASE - 2 * P });
    expect(b).toEqual({ ok: true, value: DEFAULT_MMAP_BASE - 5 * P });
    expect(mm.mapCount).toBe(1);
    const v = mm.findVma(0) as NonNullable<ReturnType<typeof mm.findVma>>;
    expect([v.vmStart, v.vmEnd]).toEqual([DEFAULT_MMAP_BASE - 5 * P, DEFAULT_MMAP_BASE]);
    expect(v.vmFlags & VM_ACCOUNT).toBeTruthy();
    expect(v.vmFlags & VM_SOFTDIRTY).toBeTruthy();
    checkMmInvariants([mm]);
  });

  it('does not merge mappings with different protections', () => {
    const mm = new MmStruct();
    map(mm, A, 1, RW);
    map(mm, A + P, 1, PROT_READ);
    expect(mm.mapCount).toBe(2);
    expect(procMaps(mm)).toBe(
      '100000000000-100000001000 rw-p 00000000 00:00 0 \n100000001000-100000002000 r--p 00000000 00:00 0 \n',
    );
  });

  it('uses a free hint address and ignores an occupied one', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A + 123, len: P, prot: RW, flags: PRIV })).toEqual({ ok: true, value: A });
    const r = mmapSync(mm, { addr: A, len: P, prot: RW, flags: PRIV });
    expect(r).toEqual({ ok: true, value: DEFAULT_MMAP_BASE - P });
  });

  it('raises a hint below mmap_min_addr to mmap_min_addr', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: 0x1000, len: P, prot: RW, flags: PRIV })).toEqual({
      ok: true,
      value: 0x10000,
    });
  });

  it('aligns hint-less private anonymous mappings of a multiple of 2 MiB to 2 MiB (THP), not others', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: 0, len: P, prot: RW, flags: PRIV })).toEqual({
      ok: true,
      value: DEFAULT_MMAP_BASE - P,
    });
    const r = mmapSync(mm, { addr: 0, len: 2 * 2 ** 20, prot: RW, flags: PRIV });
    expect(r.ok && r.value % 2 ** 21).toBe(0);
    // 4 MiB are searched below the first mapping, then the top 2 MiB boundary inside is used.
    expect(r.ok && r.value).toBe(0x7ffff7c00000);
    const s = mmapSync(mm, { addr: 0, len: 2 * 2 ** 20 + P, prot: RW, flags: PRIV });
    expect(s.ok && s.value).toBe(0x7ffff7c00000 - 2 * 2 ** 20 - P);
    const t = mmapSync(mm, { addr: 0, len: 2 * 2 ** 20, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(t.ok && t.value).toBe(0x7ffff7c00000 - 4 * 2 ** 20 - P);
  });

  it('refuses addresses below mmap_min_addr with EPERM unless the task has CAP_SYS_RAWIO', () => {
    const mm = new MmStruct();
    expect(map(mm, 1, 1, RW, PRIV | MAP_FIXED)).toEqual({ ok: false, errno: Errno.EPERM });
    expect(map(mm, 0, 1, RW, PRIV | MAP_FIXED)).toEqual({ ok: false, errno: Errno.EPERM });
    const root = new MmStruct({ capSysRawio: true });
    expect(map(root, 1, 1, RW, PRIV | MAP_FIXED)).toEqual({ ok: true, value: P });
  });

  it('MAP_FIXED replaces what was there; MAP_FIXED_NOREPLACE refuses with EEXIST', () => {
    const mm = new MmStruct();
    map(mm, A, 4, RW);
    expect(map(mm, A + P, 1, PROT_READ, PRIV | MAP_FIXED_NOREPLACE)).toEqual({
      ok: false,
      errno: Errno.EEXIST,
    });
    expect(mm.mapCount).toBe(1);
    expect(map(mm, A + P, 1, PROT_READ, PRIV | MAP_FIXED)).toEqual({ ok: true, value: A + P });
    expect(procMaps(mm).split('\n').filter(Boolean)).toEqual([
      '100000000000-100000001000 rw-p 00000000 00:00 0 ',
      '100000001000-100000002000 r--p 00000000 00:00 0 ',
      '100000002000-100000004000 rw-p 00000000 00:00 0 ',
    ]);
    checkMmInvariants([mm]);
  });

  it('returns Linux errnos for bad arguments and changes nothing', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const before = procMaps(mm);
    const cases: [Parameters<typeof mmapSync>[1], number][] = [
      [{ addr: 0, len: 0, prot: RW, flags: PRIV }, Errno.EINVAL],
      [{ addr: A + 1, len: P, prot: RW, flags: PRIV | MAP_FIXED }, Errno.EINVAL],
      [{ addr: 0, len: P, prot: RW, flags: MAP_ANONYMOUS }, Errno.EINVAL],
      [{ addr: 0, len: P, prot: RW, flags: PRIV, offset: 100 }, Errno.EINVAL],
      [{ addr: 0, len: 2 ** 48, prot: RW, flags: PRIV }, Errno.ENOMEM],
      [{ addr: 0x7ffffffff000, len: 2 * P, prot: RW, flags: PRIV | MAP_FIXED }, Errno.ENOMEM],
      [{ addr: 0, len: P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN }, Errno.EINVAL],
      [{ addr: -4096, len: P, prot: RW, flags: PRIV }, Errno.EINVAL],
      [{ addr: 0, len: P, prot: RW, flags: MAP_SHARED_VALIDATE | MAP_ANONYMOUS }, Errno.EINVAL],
      [{ addr: 0, len: P, prot: RW, flags: PRIV | MAP_HUGETLB }, Errno.ENOMEM],
    ];
    for (const [args, errno] of cases) {
      expect(mmapSync(mm, args), JSON.stringify(args)).toEqual({ ok: false, errno });
      expect(procMaps(mm)).toBe(before);
    }
  });

  it('enforces max_map_count with Linux off-by-one: the check is map_count > max', () => {
    const mm = new MmStruct({ maxMapCount: 3 });
    for (let i = 0; i < 4; i++) expect(map(mm, A + i * 2 * P, 1).ok).toBe(true);
    expect(mm.mapCount).toBe(4);
    expect(map(mm, A + 20 * P, 1)).toEqual({ ok: false, errno: Errno.ENOMEM });
    // A mapping that merges still fails: the check happens before the merge is tried.
    expect(map(mm, A + P, 1)).toEqual({ ok: false, errno: Errno.ENOMEM });
    expect(mm.mapCount).toBe(4);
  });

  it('maps shared anonymous memory as its own /dev/zero (deleted) file that never merges', () => {
    const mm = new MmStruct();
    map(mm, A, 1, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    map(mm, A + P, 1, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    expect(mm.mapCount).toBe(2);
    const lines = procMaps(mm).split('\n');
    expect(lines[0]).toMatch(/^100000000000-100000001000 rw-s 00000000 00:01 \d+ +\/dev\/zero \(deleted\)$/);
    expect(lines[0].indexOf('/dev/zero')).toBe(73);
  });

  it('MAP_POPULATE calls the populate hook after dropping the lock, with write for private writable maps', () => {
    const mm = new MmStruct();
    const calls: unknown[] = [];
    const r = runSync(
      sysMmap(mm, {
        addr: A,
        len: 3 * P,
        prot: RW,
        flags: PRIV | MAP_FIXED | MAP_POPULATE,
        *populate(m, start, len, write) {
          calls.push([start, len, write, m.mmapLock.isLocked()]);
        },
      }),
    );
    expect(r.ok).toBe(true);
    expect(calls).toEqual([[A, 3 * P, true, false]]);
  });

  it('MAP_LOCKED populates too (mm_populate for VM_LOCKED), MAP_POPULATE|MAP_NONBLOCK does not', () => {
    const mm = new MmStruct();
    const calls: number[] = [];
    const populate = function* (_m: MmStruct, start: number) {
      calls.push(start);
    };
    runSync(
      sysMmap(mm, { addr: A, len: P, prot: PROT_READ, flags: PRIV | MAP_FIXED | MAP_LOCKED, populate }),
    );
    runSync(
      sysMmap(mm, {
        addr: A + 4 * P,
        len: P,
        prot: RW,
        flags: PRIV | MAP_FIXED | MAP_POPULATE | MAP_NONBLOCK,
        populate,
      }),
    );
    expect(calls).toEqual([A]);
  });

  it('munmap then mmap reuses the space and invariants hold', () => {
    const mm = new MmStruct();
    const a = mmapSync(mm, { addr: 0, len: 10 * P, prot: RW, flags: PRIV });
    if (!a.ok) throw new Error('mmap failed');
    expect(munmapSync(mm, a.value, 10 * P)).toEqual({ ok: true, value: 0 });
    expect(mm.mapCount).toBe(0);
    expect(mmapSync(mm, { addr: 0, len: P, prot: RW, flags: PRIV })).toEqual({
      ok: true,
      value: DEFAULT_MMAP_BASE - P,
    });
    checkMmInvariants([mm]);
  });
});

describe("mmap of a file: do_mmap's checks of the open file and the map type (nothing changes on failure)", () => {
  const f = (readable?: boolean, writable?: boolean): MmapFile => ({
    file: { path: '/data', devMajor: 8, devMinor: 1, ino: 7 },
    ops: {},
    readable,
    writable,
  });
  const fmap = (mm: MmStruct, prot: number, flags: number, file: MmapFile) =>
    mmapSync(mm, { addr: A, len: 2 * P, prot, flags: flags | MAP_FIXED, file });

  it.each([
    ['MAP_SHARED_VALIDATE with an unknown flag', RW, MAP_SHARED_VALIDATE | 0x40000000, f(), Errno.EOPNOTSUPP],
    ['a file not opened for reading', PROT_READ, MAP_PRIVATE, f(false), Errno.EACCES],
    ['MAP_SHARED|PROT_WRITE of a file not opened for writing', RW, MAP_SHARED, f(true, false), Errno.EACCES],
    [
      'MAP_SHARED_VALIDATE|PROT_WRITE of a read-only file',
      RW,
      MAP_SHARED_VALIDATE,
      f(true, false),
      Errno.EACCES,
    ],
    ['map type 0 (neither shared nor private)', PROT_READ, 0, f(), Errno.EINVAL],
    ['MAP_GROWSDOWN of a file', PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, f(), Errno.EINVAL],
  ])('%s fails', (_name, prot, flags, file, errno) => {
    const mm = new MmStruct();
    expect(fmap(mm, prot, flags, file)).toEqual({ ok: false, errno });
    expect(mm.mapCount).toBe(0);
    expect(mm.totalVm).toBe(0);
  });

  it('maps shared files as shared (s), a read-only file shared without VM_MAYWRITE, private files as p', () => {
    const mm = new MmStruct();
    expect(fmap(mm, RW, MAP_SHARED_VALIDATE, f(true, true)).ok).toBe(true);
    expect(procMaps(mm)).toMatch(/^100000000000-100000002000 rw-s 00000000 08:01 7 +\/data\n$/);
    const ro = new MmStruct();
    expect(fmap(ro, PROT_READ, MAP_SHARED, f(true, false)).ok).toBe(true);
    // Linux shows a read-only shared file mapping as "r--s" but it has no VM_SHARED and cannot gain PROT_WRITE.
    expect(mprotectSync(ro, A, 2 * P, RW)).toEqual({ ok: false, errno: Errno.EACCES });
    const priv = new MmStruct();
    expect(fmap(priv, RW, MAP_PRIVATE, f(true, false)).ok).toBe(true);
    expect(procMaps(priv)).toMatch(/^100000000000-100000002000 rw-p 00000000 08:01 7 +\/data\n$/);
  });
});
