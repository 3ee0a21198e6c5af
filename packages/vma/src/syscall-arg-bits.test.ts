import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { MmStruct } from './mm-struct.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mprotectSync, mremapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

/** The values below were measured on the host kernel (Linux 6.18) with raw syscalls. */
describe('syscall arguments are unsigned longs and file descriptors, as in Linux', () => {
  it('mmap without MAP_ANONYMOUS and without a file is EBADF (no open file behind the fd) and maps nothing', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: 0, len: P, prot: RW, flags: MAP_PRIVATE })).toEqual({
      ok: false,
      errno: Errno.EBADF,
    });
    expect(mmapSync(mm, { addr: 0, len: P, prot: RW, flags: MAP_SHARED })).toEqual({
      ok: false,
      errno: Errno.EBADF,
    });
    // sys_mmap checks the offset first.
    expect(mmapSync(mm, { addr: 0, len: P, prot: RW, flags: MAP_PRIVATE, offset: 1 })).toEqual({
      ok: false,
      errno: Errno.EINVAL,
    });
    expect(procMaps(mm)).toBe('');
  });

  it('mmap ignores prot and flag bits at or above 32, as Linux does (do_mmap does not validate them)', () => {
    const mm = new MmStruct();
    const r = mmapSync(mm, {
      addr: A,
      len: P,
      prot: 2 ** 32 + PROT_READ,
      flags: 2 ** 32 + (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
    });
    expect(r).toEqual({ ok: true, value: A });
    expect(procMaps(mm)).toContain(' r--p ');
  });

  it('mprotect with prot bits at or above 32 (or negative) is EINVAL and changes nothing; with len 0 it succeeds', () => {
    const mm = new MmStruct();
    mmapSync(mm, { addr: A, len: 2 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    const before = procMaps(mm);
    for (const prot of [2 ** 32 + RW, 2 ** 40 + PROT_READ, -(2 ** 32) + RW]) {
      expect(mprotectSync(mm, A, P, prot), String(prot)).toEqual({ ok: false, errno: Errno.EINVAL });
      expect(procMaps(mm)).toBe(before);
    }
    // do_mprotect_pkey() returns 0 for len 0 before arch_validate_prot() looks at prot.
    expect(mprotectSync(mm, A, 0, 2 ** 32 + RW)).toEqual({ ok: true, value: 0 });
    expect(mprotectSync(mm, A, P, RW)).toEqual({ ok: true, value: 0 });
  });

  it('mremap with flag bits at or above 32 (or negative) is EINVAL and changes nothing', () => {
    const mm = new MmStruct();
    mmapSync(mm, { addr: A, len: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    const before = procMaps(mm);
    for (const flags of [2 ** 32, 2 ** 32 + MREMAP_MAYMOVE, -1]) {
      expect(mremapSync(mm, A, P, 2 * P, flags), String(flags)).toEqual({ ok: false, errno: Errno.EINVAL });
      expect(procMaps(mm)).toBe(before);
    }
    expect(mremapSync(mm, A, P, P, 0)).toEqual({ ok: true, value: A });
  });
});
