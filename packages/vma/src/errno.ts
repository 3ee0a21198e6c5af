/**
 * Linux errno values (include/uapi/asm-generic/errno-base.h and errno.h) that the mapping syscalls
 * return, and the result type of every syscall in this package.
 */
export const Errno = {
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
} as const;

/** One of the {@link Errno} values. */
export type ErrnoValue = (typeof Errno)[keyof typeof Errno];

const errnoNames = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** The symbolic name of an errno value (`ENOMEM`), as the replay format and strerror-less logs print it. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * The outcome of a syscall: a value, or a Linux errno. Syscalls never throw for bad arguments; a failed
 * call leaves the mm as it was (except where Linux itself applies part of a request, documented per call).
 */
export type SysResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errno: ErrnoValue };

/** A successful {@link SysResult}. */
export function ok<T>(value: T): SysResult<T> {
  return { ok: true, value };
}

/** A failed {@link SysResult}. */
export function fail<T = never>(errno: ErrnoValue): SysResult<T> {
  return { ok: false, errno };
}
