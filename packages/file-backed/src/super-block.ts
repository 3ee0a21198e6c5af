import { Errno, type ErrnoValue, fail, type MemoryEnv, ok, type RcuLike, type SysResult } from '@spf/vma';
import { BlockDevice, type BlockDeviceOptions } from './block-device.js';
import { FileBackedConfigError } from './errors.js';
import { File } from './file.js';
import type { FilemapRetryPaths } from './filemap-retry-paths.js';
import { Inode } from './inode.js';

/** Options of a {@link SuperBlock} (one mounted file system). */
export interface SuperBlockOptions {
  /** The system's physical memory and cost model (a booted system's `MemoryEnv`). */
  readonly env: MemoryEnv;
  /** The system's RCU: page-cache nodes are freed through it. */
  readonly rcu: RcuLike;
  /** The disk, or options to make one. */
  readonly device?: BlockDevice | BlockDeviceOptions;
  /** Where it is mounted; paths of its files start with it (default `/mnt`). */
  readonly mountpoint?: string;
  /**
   * Whether a fault that must wait for I/O drops mmap_lock (or the VMA lock) and returns VM_FAULT_RETRY
   * (`maybe_unlock_mmap_for_io()`, Linux's behaviour, default true). False keeps the lock held across the
   * I/O: the behaviour before the retry protocol, for measuring what it buys (Question 1).
   */
  readonly dropMmapLockForIo?: boolean;
  /**
   * The pieces of `filemap_fault()` that drop the fault lock around I/O, to run instead of this package's
   * (an injection point: Lab 6 of the course). Absent: the package's own.
   */
  readonly retryPaths?: FilemapRetryPaths;
}

/**
 * `struct super_block` of a mounted disk file system (ext4 on /dev/vda on the reference host), reduced to
 * what files and faults need: its device, its inodes by path, and the count of files still referenced
 * (open file descriptions, including those VMAs hold), which {@link umount} checks.
 */
export class SuperBlock {
  readonly env: MemoryEnv;
  readonly rcu: RcuLike;
  readonly device: BlockDevice;
  readonly mountpoint: string;
  readonly dropMmapLockForIo: boolean;
  /** `SuperBlockOptions.retryPaths`, or null for the package's own. */
  readonly retryPaths: FilemapRetryPaths | null;
  readonly devMajor: number;
  readonly devMinor: number;
  /** Inodes by path (the directory). */
  readonly inodes = new Map<string, Inode>();
  /** `struct file`s alive on this file system (what makes umount say EBUSY). */
  openFiles = 0;
  mounted = true;
  private nextIno = 12;

  constructor(opts: SuperBlockOptions) {
    this.env = opts.env;
    this.rcu = opts.rcu;
    this.device = opts.device instanceof BlockDevice ? opts.device : new BlockDevice(opts.device ?? {});
    this.mountpoint = opts.mountpoint ?? '/mnt';
    if (!this.mountpoint.startsWith('/')) {
      throw new FileBackedConfigError(`mountpoint '${this.mountpoint}' must be an absolute path`);
    }
    this.dropMmapLockForIo = opts.dropMmapLockForIo ?? true;
    this.retryPaths = opts.retryPaths ?? null;
    this.devMajor = this.device.major;
    this.devMinor = this.device.minor;
  }

  private fullPath(name: string): string {
    return name.startsWith('/') ? name : `${this.mountpoint}/${name}`;
  }

  /**
   * Models `do_sys_open()` -> `path_openat()` for a regular file of this file system: with `create`, a
   * missing file is created empty (`O_CREAT`); with `truncate` an existing one is cut to size 0
   * (`O_TRUNC`, only when opened for writing). Returns the new `struct file` (one reference, the caller's
   * fd), ENOENT, EINVAL for an empty name, or ENODEV after umount.
   */
  open(
    name: string,
    flags: { readonly read?: boolean; readonly write?: boolean; readonly create?: boolean } = {},
  ): SysResult<File> {
    if (!this.mounted) return fail(Errno.ENODEV);
    if (typeof name !== 'string' || name.length === 0) return fail(Errno.EINVAL);
    const path = this.fullPath(name);
    let inode = this.inodes.get(path);
    if (inode === undefined) {
      if (!flags.create) return fail(Errno.ENOENT);
      inode = new Inode(this, this.nextIno++, path);
      this.inodes.set(path, inode);
    }
    return ok(new File(inode, flags.read ?? true, flags.write ?? false));
  }

  /** Looks up the inode of `name` (null if none). */
  lookup(name: string): Inode | null {
    return this.inodes.get(this.fullPath(name)) ?? null;
  }

  /**
   * Models `umount(2)` (`do_umount()` -> `may_umount_tree()`): EBUSY while any file of this file system is
   * still referenced (an open fd, or a VMA whose `vm_file` has not been released yet); otherwise the file
   * system is detached and every later open fails with ENODEV.
   */
  umount(): ErrnoValue | 0 {
    if (!this.mounted) return Errno.EINVAL;
    if (this.openFiles > 0) return Errno.EBUSY;
    this.mounted = false;
    return 0;
  }
}
