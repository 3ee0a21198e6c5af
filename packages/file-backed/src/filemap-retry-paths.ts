import type { Kernel } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import type { VmFault } from '@spf/vma';
import type { File } from './file.js';

/**
 * `struct file **fpin` of mm/filemap.c: where `lock_folio_maybe_drop_mmap()` leaves the file it pinned
 * (null while the fault still holds its lock).
 */
export interface FilePin {
  file: File | null;
}

/**
 * The three pieces of `filemap_fault()` (mm/filemap.c) that decide whether a fault waits for I/O with
 * mmap_lock (or the per-VMA lock) held, or drops it and asks to be retried. An injection point: a file
 * system built with `SuperBlockOptions.retryPaths` runs these instead of this package's
 * ({@link builtinFilemapRetryPaths}); Lab 6 of the course plugs the student's versions in here. Everything
 * else of the fault (the page-cache lookup, readahead, the page-not-uptodate read, the truncation checks)
 * stays the package's.
 *
 * The contract, as in Linux: whenever one of them dropped the fault lock it must have pinned the file first
 * (`get_file()`) and handed the pin back; `filemap_fault()` then returns through {@link outRetry} with
 * VM_FAULT_RETRY, without the lock, and the pin is dropped there (`fput()`).
 */
export interface FilemapRetryPaths {
  /**
   * `maybe_unlock_mmap_for_io(vmf, fpin)`: called before waiting for I/O. Returns the pinned file (`fpin`
   * unchanged if it is already pinned; a new pin if the fault may retry and the lock was dropped now), or
   * null when the fault keeps its lock (a retried fault, RETRY_NOWAIT, no ALLOW_RETRY).
   */
  maybeUnlockMmapForIo(vmf: VmFault, fpin: File | null): Kernel<File | null>;
  /**
   * `lock_folio_maybe_drop_mmap(vmf, folio, &fpin)`: lock `folio`, dropping the fault lock first (through
   * `maybeUnlockMmapForIo`) if it has to sleep for it. Returns false, with the page unlocked, when the
   * caller must return VM_FAULT_RETRY at once (RETRY_NOWAIT: the fault lock still held); `fpin.file` is
   * the pin, if one was taken.
   */
  lockFolioMaybeDropMmap(vmf: VmFault, folio: Page, fpin: FilePin): Kernel<boolean>;
  /**
   * `out_retry:` of `filemap_fault()`: drop the reference on `folio` (if any) and the pin on the file (if
   * any), and return `ret | VM_FAULT_RETRY`.
   */
  outRetry(folio: Page | null, fpin: File | null, ret: number): Kernel<number>;
}
