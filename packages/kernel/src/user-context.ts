import { sysMsync } from '@spf/file-backed';
import { call, type Kernel, now, yieldCpu, delayEffect } from '@spf/machine';
import {
  mmapFileOf,
  sysFadvise,
  sysFsync,
  sysFtruncate,
  sysOpen,
  sysPread,
  sysPwrite,
  O_CREAT,
  O_TRUNC,
  O_WRONLY,
} from './file-syscalls.js';
import type { ExitStatus, Process, Thread } from './process.js';
import { ProcessExiting, type SignalName } from './signals.js';
import type { System } from './system.js';
import {
  type MmapFile,
  ok,
  type SysResult,
  sysBrk,
  sysMadvise,
  sysMmap,
  sysMprotect,
  sysMremap,
  sysMunmap,
  procMaps,
  PAGE_SIZE,
  type MremapArgs,
  MAP_ANONYMOUS,
} from '@spf/vma';
import { type PageState, pageStateAt } from './pagemap.js';
import { checkLength, InvalidUserAccessError } from './user-access-error.js';

/** A user program: a generator function that gets the {@link UserContext} of its thread. */
export type UserProgram = (u: UserContext) => Kernel<unknown>;

/**
 * What a user program can do, each call a kernel generator to `yield*`: loads, stores and instruction
 * fetches at virtual addresses (through the MMU; a fault enters the kernel's fault handler and the access
 * is retried), and system calls (each charging `cost.syscall`). Syscalls return Linux's results: a
 * `SysResult` with the value or the errno.
 *
 * Faults the kernel cannot fix deliver SIGSEGV or SIGBUS: by default they kill the process (the run's
 * log reports it); after {@link catchSignal} the faulting access throws a `UserSignal` instead.
 */
export class UserContext {
  constructor(
    readonly system: System,
    readonly thread: Thread,
  ) {}

  /** The process this thread belongs to. */
  get process(): Process {
    return this.thread.process;
  }
  /** The process id. */
  get pid(): number {
    return this.thread.process.pid;
  }

  private *syscall(label: string): Kernel<void> {
    this.system.checkAlive(this.thread);
    yield delayEffect(this.system.cost.syscall, label);
  }

  // ---- memory accesses ------------------------------------------------------------------------

  /** Loads the byte at `addr` (`movb (addr), %al`). */
  load8(addr: number): Kernel<number> {
    return call(this.system.load8(this.thread, addr, 'read'));
  }
  /** Stores the low 8 bits of `value` (a whole number) at `addr` (`movb %al, (addr)`). */
  store8(addr: number, value: number): Kernel<void> {
    return call(this.system.store8(this.thread, addr, value));
  }
  /** Fetches the instruction byte at `addr` (an execute access: needs an executable mapping). */
  fetch8(addr: number): Kernel<number> {
    return call(this.system.load8(this.thread, addr, 'fetch'));
  }
  /** Loads `len` bytes starting at `addr` (one access per page touched). */
  *loadBytes(addr: number, len: number): Kernel<Uint8Array> {
    checkLength(len, 'loadBytes');
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const n = Math.min(len - done, PAGE_SIZE - (a % PAGE_SIZE));
      const pa = yield* this.system.translateUser(this.thread, a, 'read');
      out.set(this.system.mem.readBytes(pa, n), done);
      done += n;
    }
    return out;
  }
  /** Stores `data` at `addr` (one access per page touched). */
  *storeBytes(addr: number, data: Uint8Array): Kernel<void> {
    if (!(data instanceof Uint8Array)) {
      throw new InvalidUserAccessError(`storeBytes: the data must be a Uint8Array, got ${typeof data}`);
    }
    let done = 0;
    while (done < data.length) {
      const a = addr + done;
      const n = Math.min(data.length - done, PAGE_SIZE - (a % PAGE_SIZE));
      const pa = yield* this.system.translateUser(this.thread, a, 'write');
      this.system.mem.writeBytes(pa, data.subarray(done, done + n));
      done += n;
    }
  }

  // ---- system calls ---------------------------------------------------------------------------

  /**
   * mmap(2): anonymous memory with MAP_ANONYMOUS in `flags`, or a file at byte `offset`: an fd of this
   * process (a number; EBADF if it is not open, and -1 without MAP_ANONYMOUS is EBADF), or an `MmapFile`
   * object (a file with its own `vm_ops`, e.g. a special mapping). A mapping may reach past the end of the
   * file: mmap succeeds, and touching a page past the end raises SIGBUS.
   */
  *mmap(
    addr: number,
    len: number,
    prot: number,
    flags: number,
    fd: number | MmapFile | null = null,
    offset = 0,
  ): Kernel<SysResult<number>> {
    yield* this.syscall('sys_mmap');
    const sys = this.system;
    const th = this.thread;
    const mm = this.process.mm;
    let file: MmapFile | null = null;
    if (typeof fd === 'number') {
      // ksys_mmap_pgoff(): the fd is looked up only without MAP_ANONYMOUS.
      if ((flags & MAP_ANONYMOUS) === 0) {
        const f = mmapFileOf(this.process.files, fd);
        if (!f.ok) return f;
        file = f.value;
      }
    } else {
      file = fd;
    }
    const r = yield* sysMmap(mm, {
      addr,
      len,
      prot,
      flags,
      file,
      offset,
      populate: (m, start, l, w) => sys.populate(th, m, start, l, w),
    });
    return r;
  }
  // ---- files -----------------------------------------------------------------------------------

  /**
   * open(2) of a file of the file system at `/mnt` (`name` relative to it, or an absolute path under it):
   * `O_RDONLY`/`O_WRONLY`/`O_RDWR` with `O_CREAT`, `O_EXCL`, `O_TRUNC`. Returns the lowest free fd; ENOENT,
   * EEXIST, EMFILE, ENODEV (after umount) or EINVAL. A failed open creates nothing.
   */
  *open(name: string, flags: number): Kernel<SysResult<number>> {
    yield* this.syscall('sys_openat');
    return yield* sysOpen(this.system.fs, this.process.files, name, flags);
  }
  /** creat(2): `open(name, O_CREAT | O_WRONLY | O_TRUNC)`. */
  creat(name: string): Kernel<SysResult<number>> {
    return this.open(name, O_CREAT | O_WRONLY | O_TRUNC);
  }
  /** close(2): EBADF for anything that is not an open fd. A mapping of the file keeps it referenced. */
  *close(fd: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_close');
    return yield* this.process.files.close(fd);
  }
  /** pread(2): up to `len` bytes from byte `pos` (fewer at the end of the file, none past it). */
  *pread(fd: number, pos: number, len: number): Kernel<SysResult<Uint8Array>> {
    yield* this.syscall('sys_pread64');
    return yield* sysPread(this.process.files, fd, pos, len);
  }
  /** pwrite(2): writes `data` at byte `pos`, growing the file if it ends past the end. */
  *pwrite(fd: number, pos: number, data: Uint8Array): Kernel<SysResult<number>> {
    yield* this.syscall('sys_pwrite64');
    return yield* sysPwrite(this.process.files, fd, pos, data);
  }
  /** ftruncate(2): EINVAL for a negative or non-integer size; shrinking unmaps the cut part everywhere. */
  *ftruncate(fd: number, size: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_ftruncate');
    return yield* sysFtruncate(this.process.files, fd, size);
  }
  /** fsync(2): writes the file's dirty pages back and waits for them. */
  *fsync(fd: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_fsync');
    return yield* sysFsync(this.process.files, fd);
  }
  /**
   * posix_fadvise(2); only POSIX_FADV_DONTNEED is modelled (drops the clean, unmapped pages of the range
   * from the page cache; `len` 0 means to the end of the file). Returns the errno rather than setting it,
   * as posix_fadvise does.
   */
  *posixFadvise(fd: number, offset: number, len: number, advice: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_fadvise64');
    return yield* sysFadvise(this.process.files, fd, offset, len, advice);
  }
  /** msync(2): MS_SYNC writes the dirty pages of shared file mappings in the range back. */
  *msync(addr: number, len: number, flags: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_msync');
    return yield* sysMsync(this.process.mm, addr, len, flags);
  }
  /** umount(2) of `/mnt`: EBUSY while any of its files is referenced (an open fd or a mapping). */
  *umount(): Kernel<SysResult<0>> {
    yield* this.syscall('sys_umount');
    return this.system.umount();
  }

  /** munmap(2). */
  *munmap(addr: number, len: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_munmap');
    return yield* sysMunmap(this.process.mm, addr, len);
  }
  /** mprotect(2). */
  *mprotect(addr: number, len: number, prot: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_mprotect');
    return yield* sysMprotect(this.process.mm, addr, len, prot);
  }
  /** mremap(2): `(addr, oldLen, newLen, flags, newAddr?)`, @spf/vma's `MremapArgs`. */
  *mremap(...args: MremapArgs): Kernel<SysResult<number>> {
    yield* this.syscall('sys_mremap');
    return yield* sysMremap(this.process.mm, ...args);
  }
  /** brk(2): returns the new break (the old one if the request failed), as the raw syscall does. */
  *brk(addr: number): Kernel<number> {
    yield* this.syscall('sys_brk');
    return yield* sysBrk(this.process.mm, addr);
  }
  /** madvise(2). */
  *madvise(addr: number, len: number, advice: number): Kernel<SysResult<0>> {
    yield* this.syscall('sys_madvise');
    return yield* sysMadvise(this.process.mm, addr, len, advice);
  }
  /**
   * fork(2): the child gets a copy-on-write copy of this address space and runs `child` (on `cpu`, default
   * this thread's CPU). Returns the child's pid, or ENOMEM when memory for the child's page tables ran
   * out (this process is unchanged then).
   */
  *fork(child: UserProgram, cpu = this.thread.cpu): Kernel<SysResult<number>> {
    yield* this.syscall('sys_fork');
    const r = yield* this.system.fork(this.process, child, cpu);
    return r.ok ? ok(r.value.pid) : r;
  }
  /**
   * wait4(2) for a child by pid: sleeps until it exits, reaps it and returns how it ended; ECHILD if `pid`
   * is not a child of this process or was already reaped.
   */
  *wait(pid: number): Kernel<SysResult<ExitStatus>> {
    yield* this.syscall('sys_wait4');
    return yield* this.system.wait(this.process, pid);
  }
  /** clone(CLONE_VM|CLONE_THREAD): another thread of this process running `program` on `cpu`. */
  *spawnThread(program: UserProgram, cpu: number): Kernel<number> {
    yield* this.syscall('sys_clone');
    return this.system.spawnThread(this.process, program, cpu).tid;
  }
  /** exit_group(2): ends every thread of the process with `code`. Never returns. */
  *exit(code = 0): Kernel<never> {
    yield* this.syscall('sys_exit_group');
    const p = this.process;
    if (p.exiting === null) {
      p.exiting = `exit(${code})`;
      p.exitCode = code;
    }
    throw new ProcessExiting(p.exiting);
  }
  /** sigaction(2) with a handler: fault signals of this kind throw a UserSignal instead of killing. */
  catchSignal(signal: SignalName): void {
    this.process.caught.add(signal);
  }
  /** sigaction(2) with SIG_DFL: the signal kills the process again. */
  defaultSignal(signal: SignalName): void {
    this.process.caught.delete(signal);
  }
  /** getrusage(RUSAGE_SELF): the process's minor and major fault counts. */
  rusage(): { minflt: number; majflt: number } {
    return this.process.rusage();
  }
  /** sched_yield(2). */
  *schedYield(): Kernel<void> {
    yield* this.syscall('sys_sched_yield');
    yield* yieldCpu();
  }
  /** clock_gettime(2): simulated nanoseconds on this CPU. */
  *clock(): Kernel<number> {
    return yield* now();
  }
  /** Reads this process's /proc/self/maps (optionally only VMAs overlapping [start, end)). */
  maps(start = 0, end = Number.POSITIVE_INFINITY): string {
    return procMaps(this.process.mm, start, end);
  }
  /** What /proc/self/pagemap says about the page at `addr` (`.`, `Z`, `A` or `F`). */
  pagemap(addr: number): PageState {
    return pageStateAt(this.system, this.process, addr);
  }
}
