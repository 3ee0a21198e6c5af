import {
  type File,
  fadviseDontneed,
  fileFsync,
  fileRead,
  fileTruncate,
  fileWrite,
  filemapVmOps,
  POSIX_FADV_DONTNEED,
  type SuperBlock,
} from '@spf/file-backed';
import type { Kernel } from '@spf/machine';
import { Errno, fail, type MmapFile, ok, type SysResult } from '@spf/vma';
import type { FdTable } from './fd-table.js';

/** open(2) flags (include/uapi/asm-generic/fcntl.h, x86-64 values). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
/** The open flags this kernel models; any other bit gives EINVAL (Linux ignores unknown bits: see sysOpen). */
const KNOWN_OPEN_FLAGS = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC;

/** posix_fadvise(2) advice values (include/uapi/linux/fadvise.h, x86-64). */
export const POSIX_FADV_NORMAL = 0;
export const POSIX_FADV_RANDOM = 1;
export const POSIX_FADV_SEQUENTIAL = 2;
export const POSIX_FADV_WILLNEED = 3;
export { POSIX_FADV_DONTNEED };
export const POSIX_FADV_NOREUSE = 5;

/** A posix_fadvise advice that Linux accepts but this kernel does not model (only DONTNEED is). */
export class UnsupportedAdviceError extends Error {
  override readonly name = 'UnsupportedAdviceError';
}

/** A byte offset or count: a non-negative safe integer. */
function isSize(n: number): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Models `do_sys_open()` for a regular file of the one mounted file system: takes the lowest free fd first
 * (`get_unused_fd_flags()`: EMFILE, nothing created), then opens or creates the file (`path_openat()`:
 * ENOENT without O_CREAT, EEXIST with O_CREAT|O_EXCL on an existing name, ENODEV after umount), truncates it
 * with O_TRUNC when opened for writing, and installs the fd. EINVAL for O_ACCMODE 3, an unknown flag bit or a
 * name that is not a non-empty string.
 *
 * Simplified: one flat directory (names are paths under the mount point), no permissions, no O_APPEND,
 * O_CLOEXEC or O_DIRECT; Linux silently ignores unknown flag bits, here they are refused so that a program
 * never believes a flag took effect.
 */
export function* sysOpen(
  sb: SuperBlock,
  fds: FdTable,
  name: string,
  flags: number,
): Kernel<SysResult<number>> {
  if (!Number.isInteger(flags) || (flags & ~KNOWN_OPEN_FLAGS) !== 0) return fail(Errno.EINVAL);
  const acc = flags & O_ACCMODE;
  if (acc === O_ACCMODE) return fail(Errno.EINVAL);
  if (typeof name !== 'string' || name.length === 0) return fail(Errno.EINVAL);
  const fd = fds.unusedFd();
  if (!fd.ok) return fd;
  if (!sb.mounted) return fail(Errno.ENODEV);
  const exists = sb.lookup(name) !== null;
  if (exists && (flags & O_CREAT) !== 0 && (flags & O_EXCL) !== 0) return fail(Errno.EEXIST);
  const r = sb.open(name, {
    read: acc === O_RDONLY || acc === O_RDWR,
    write: acc === O_WRONLY || acc === O_RDWR,
    create: (flags & O_CREAT) !== 0,
  });
  if (!r.ok) return r;
  const file = r.value;
  if ((flags & O_TRUNC) !== 0 && file.writable && file.inode.size > 0) {
    const t = yield* fileTruncate(file, 0);
    if (!t.ok) {
      yield* file.put();
      return t;
    }
  }
  fds.install(fd.value, file);
  return ok(fd.value);
}

/** The open file behind `fd`, or EBADF. */
function fdget(fds: FdTable, fd: number): SysResult<File> {
  const f = fds.get(fd);
  return f === null ? fail(Errno.EBADF) : ok(f);
}

/** Models `ksys_pread64()`: EBADF for a bad fd or one not open for reading, EINVAL for a bad pos or len. */
export function* sysPread(fds: FdTable, fd: number, pos: number, len: number): Kernel<SysResult<Uint8Array>> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  if (!f.value.readable) return fail(Errno.EBADF);
  if (!isSize(pos) || !isSize(len)) return fail(Errno.EINVAL);
  return yield* fileRead(f.value, pos, len);
}

/** Models `ksys_pwrite64()`: EBADF for a bad fd or one not open for writing, EINVAL for a bad pos. */
export function* sysPwrite(
  fds: FdTable,
  fd: number,
  pos: number,
  data: Uint8Array,
): Kernel<SysResult<number>> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  if (!f.value.writable) return fail(Errno.EBADF);
  if (!isSize(pos) || !(data instanceof Uint8Array)) return fail(Errno.EINVAL);
  return yield* fileWrite(f.value, pos, data);
}

/**
 * Models `do_ftruncate()`: EBADF for a bad fd, EINVAL for a negative or non-integer size or an fd not open
 * for writing; otherwise `fileTruncate` (shrinking unmaps the cut part of every mapping).
 */
export function* sysFtruncate(fds: FdTable, fd: number, size: number): Kernel<SysResult<0>> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  if (!isSize(size) || !f.value.writable) return fail(Errno.EINVAL);
  return yield* fileTruncate(f.value, size);
}

/** Models `do_fsync()`: EBADF for a bad fd. */
export function* sysFsync(fds: FdTable, fd: number): Kernel<SysResult<0>> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  return yield* fileFsync(f.value);
}

/**
 * Models `ksys_fadvise64_64()`: EBADF for a bad fd; EINVAL for a negative or non-integer offset or length
 * or an advice outside 0-5; POSIX_FADV_DONTNEED runs `fadviseDontneed` (`len` 0: to the end of the file).
 *
 * @throws UnsupportedAdviceError for NORMAL, RANDOM, SEQUENTIAL, WILLNEED and NOREUSE, which Linux accepts
 *   but this kernel does not model (they change readahead; pretending they worked would mislead).
 */
export function* sysFadvise(
  fds: FdTable,
  fd: number,
  offset: number,
  len: number,
  advice: number,
): Kernel<SysResult<0>> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  if (!Number.isSafeInteger(offset) || offset < 0 || !isSize(len)) return fail(Errno.EINVAL);
  if (!Number.isInteger(advice) || advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE) {
    return fail(Errno.EINVAL);
  }
  if (advice !== POSIX_FADV_DONTNEED) {
    throw new UnsupportedAdviceError(
      `posix_fadvise: advice ${advice} is valid on Linux but not modelled here; only POSIX_FADV_DONTNEED (4) is`,
    );
  }
  return yield* fadviseDontneed(f.value, offset, len);
}

/**
 * What mmap needs to map the file behind `fd` (`ksys_mmap_pgoff()`'s `fget()`): the file with the page
 * cache's `vm_ops` and its open mode (mmap refuses a file not open for reading, and a shared writable
 * mapping of one not open for writing, with EACCES). EBADF for a bad fd.
 */
export function mmapFileOf(fds: FdTable, fd: number): SysResult<MmapFile> {
  const f = fdget(fds, fd);
  if (!f.ok) return f;
  const file = f.value;
  return ok({ file, ops: filemapVmOps, readable: file.readable, writable: file.writable });
}
