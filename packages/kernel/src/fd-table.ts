import type { File } from '@spf/file-backed';
import type { Kernel } from '@spf/machine';
import { Errno, fail, ok, type SysResult } from '@spf/vma';

/** `RLIMIT_NOFILE`'s default soft limit on Linux: fds 0 to 1023. */
export const NR_OPEN_DEFAULT = 1024;

/**
 * A process's file descriptors: `struct files_struct` with its `fdtable` (fs/file.c), reduced to an array of
 * open files indexed by fd. Each slot holds one reference to its `struct file` (`fCount`), taken by open
 * (the file starts with it) or by {@link dup} (fork), and dropped by close or at exit.
 *
 * Simplified: no close-on-exec (there is no exec), no dup/dup2 syscalls, no RCU lookup (`fdget()` of a
 * single-threaded table; threads of a process share it, and the simulator runs the code between two yields
 * atomically, so a lookup never sees a half-installed fd).
 */
export class FdTable {
  private readonly fds: (File | null)[] = [];

  constructor(
    /** RLIMIT_NOFILE: fds are below this (default {@link NR_OPEN_DEFAULT}). */
    readonly limit = NR_OPEN_DEFAULT,
  ) {}

  /**
   * Models `get_unused_fd_flags()` -> `alloc_fd()`: the lowest free fd, without installing anything yet;
   * EMFILE when every fd below the limit is taken. open(2) asks for it before it opens (or creates) the
   * file, so a full table changes nothing.
   */
  unusedFd(): SysResult<number> {
    for (let fd = 0; fd < this.limit; fd++) if ((this.fds[fd] ?? null) === null) return ok(fd);
    return fail(Errno.EMFILE);
  }

  /** Models `fd_install()`: `fd` (from {@link unusedFd}) now refers to `file`, whose reference it takes. */
  install(fd: number, file: File): void {
    if ((this.fds[fd] ?? null) !== null) throw new Error(`fd_install: fd ${fd} is already in use`);
    this.fds[fd] = file;
  }

  /**
   * Models `fdget()`: the open file behind `fd`, or null for anything that is not an open fd (negative,
   * not an integer, beyond the table, or closed): the callers' EBADF.
   */
  get(fd: number): File | null {
    if (!Number.isSafeInteger(fd) || fd < 0 || fd >= this.fds.length) return null;
    return this.fds[fd] ?? null;
  }

  /** The open fds in increasing order. */
  openFds(): number[] {
    const out: number[] = [];
    this.fds.forEach((f, fd) => {
      if (f !== null) out.push(fd);
    });
    return out;
  }

  /**
   * Models `close_fd()` + `filp_close()`: frees the fd and drops its reference to the file (the last
   * reference releases it). EBADF for anything that is not an open fd.
   */
  *close(fd: number): Kernel<SysResult<0>> {
    const file = this.get(fd);
    if (file === null) return fail(Errno.EBADF);
    this.fds[fd] = null;
    yield* file.put();
    return ok(0);
  }

  /**
   * Models `dup_fd()` (fork without CLONE_FILES): a new table with the same fds referring to the same open
   * files, each with one more reference (`get_file()`), so parent and child share offsets and readahead
   * state as Linux's do.
   */
  dup(): FdTable {
    const t = new FdTable(this.limit);
    this.fds.forEach((f, fd) => {
      if (f === null) return;
      f.get();
      t.fds[fd] = f;
    });
    return t;
  }

  /** Models `put_files_struct()` -> `close_files()` at exit: closes every fd. */
  *closeAll(): Kernel<void> {
    for (const fd of this.openFds()) yield* this.close(fd);
  }
}
