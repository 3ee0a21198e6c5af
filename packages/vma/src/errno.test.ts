import { describe, expect, it } from 'vitest';
import { Errno, errnoName, fail, ok } from './errno.js';

describe('errno values and names', () => {
  it('has the values of include/uapi/asm-generic/errno-base.h and errno.h', () => {
    expect(Errno).toEqual({
      EPERM: 1,
      ENOENT: 2,
      EINTR: 4,
      EIO: 5,
      EBADF: 9,
      ECHILD: 10,
      EAGAIN: 11,
      ENOMEM: 12,
      EACCES: 13,
      EFAULT: 14,
      EBUSY: 16,
      EEXIST: 17,
      ENODEV: 19,
      EINVAL: 22,
      ENFILE: 23,
      EMFILE: 24,
      EOVERFLOW: 75,
      EOPNOTSUPP: 95,
    });
  });

  it('errnoName() gives the symbolic name of every errno, and E<n> for one it does not know', () => {
    for (const [name, value] of Object.entries(Errno)) expect(errnoName(value)).toBe(name);
    expect(errnoName(12)).toBe('ENOMEM');
    expect(errnoName(3)).toBe('E3');
    expect(errnoName(0)).toBe('E0');
  });

  it('ok() and fail() build the two shapes of a syscall result', () => {
    expect(ok(0x1000)).toEqual({ ok: true, value: 0x1000 });
    expect(fail(Errno.EINVAL)).toEqual({ ok: false, errno: 22 });
    const r = fail(Errno.ENOMEM);
    expect(r.ok ? 'value' : errnoName(r.errno)).toBe('ENOMEM');
  });
});
