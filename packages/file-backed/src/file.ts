import type { Kernel } from '@spf/machine';
import { rmwEffect, UseAfterFreeError } from '@spf/machine';
import { MemoryLine } from '@spf/machine';
import type { VmFile } from '@spf/vma';
import { FileRaState } from './file-ra-state.js';
import type { Inode } from './inode.js';

let fileIds = 0;

/**
 * `struct file` (include/linux/fs.h): one open file description. It implements @spf/vma's `VmFile`, so a
 * VMA mapping it holds a reference (`get_file()` at mmap, split and fork; `fput()` when the VMA goes) and
 * /proc/PID/maps prints its path and inode. It carries the readahead state (`f_ra`).
 *
 * `fCount` counts the references: the fd table's (one, from open) and one per VMA. The last `put()` releases
 * the file (`__fput()`; Linux defers it to task work on return to user space, here it runs at once), which
 * is when umount stops saying EBUSY.
 */
export class File implements VmFile {
  readonly id: number;
  readonly path: string;
  readonly devMajor: number;
  readonly devMinor: number;
  readonly ino: number;
  /** `f_count`. */
  fCount = 1;
  /** `f_ra`. */
  readonly fRa: FileRaState;
  /** `f_pos` (for callers that keep a position). */
  pos = 0;
  readonly line: MemoryLine;
  /** Set by the last put: using the file afterwards is a use-after-free. */
  released = false;

  constructor(
    readonly inode: Inode,
    /** FMODE_READ. */
    readonly readable: boolean,
    /** FMODE_WRITE. */
    readonly writable: boolean,
  ) {
    this.id = fileIds++;
    this.path = inode.path;
    this.devMajor = inode.sb.devMajor;
    this.devMinor = inode.sb.devMinor;
    this.ino = inode.ino;
    this.fRa = new FileRaState(inode.sb.device.raPages);
    this.line = new MemoryLine(`file#${this.id}`);
    inode.openFiles++;
    inode.sb.openFiles++;
  }

  /** `f_mapping`. */
  get mapping() {
    return this.inode.mapping;
  }

  /**
   * Reports a use of the file after its last fput released it (a KASAN-like use-after-free: the explorer's
   * checker for `vm_file` lifetime bugs, Lespinasse's question 2).
   */
  check(what: string): void {
    if (this.released) {
      throw new UseAfterFreeError(
        `${what} of file '${this.path}' (file#${this.id}) after its last fput released it`,
      );
    }
  }

  /** One access to `f_ra` (the readahead state shares the file's cache line). */
  *touchRa(): Kernel<void> {
    this.check('f_ra access');
    yield rmwEffect(this.line, 'f_ra');
  }

  /** `get_file()`: one more reference (a VMA, a dup'ed fd). */
  get(): void {
    this.check('get_file');
    this.fCount++;
  }

  /** `fput()`: drops a reference; the last one releases the file (`__fput()`). */
  *put(): Kernel<void> {
    this.check('fput');
    yield rmwEffect(this.line, 'fput');
    this.fCount--;
    if (this.fCount > 0) return;
    this.released = true;
    this.inode.openFiles--;
    this.inode.sb.openFiles--;
  }
}
