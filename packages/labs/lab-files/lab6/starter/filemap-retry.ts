import { VM_FAULT_RETRY } from '@spf/fault-classic';
import type { File, FilePin } from '@spf/file-backed';
import type { Kernel } from '@spf/machine';
import { lockPage, type Page } from '@spf/pagetable';
import type { VmFault } from '@spf/vma';

// Lab 6, part 1: the pieces of filemap_fault() (mm/filemap.c) that let a fault wait for the disk without
// holding mmap_lock. filemap_fault() itself (the page-cache lookup, readahead, the read) is the package's;
// it calls these three. Do part 2 (fault-retry.ts) first: nothing works without the retry loop.
//
// maybeUnlockMmapForIo(vmf, fpin): called before every wait for I/O.
//   - fpin already set: this fault dropped its lock earlier; return fpin.
//   - Only the first attempt of a fault that may retry drops the lock: faultFlagAllowRetryFirst(vmf.flags)
//     (ALLOW_RETRY and not TRIED), and not FAULT_FLAG_RETRY_NOWAIT.
//   - Before dropping it, pin the file: (vmf.vma.vmFile as File).get() (get_file()). Once the lock is
//     gone another thread may munmap the VMA, and the VMA's reference to the file goes with it.
//   - Drop the lock with releaseFaultLock(vmf) (mmap_lock, or the per-VMA lock) and return the file.
//   - Otherwise return null: the fault keeps its lock and waits holding it.
//
// lockFolioMaybeDropMmap(vmf, folio, fpin): lock the page. trylockPage(folio) first; if that fails the page
// is under I/O: with FAULT_FLAG_RETRY_NOWAIT return false (no sleeping at all); else maybe drop the lock
// (fpin.file = ...) and sleep in lockPage(folio), then return true.
//
// outRetry(folio, fpin, ret): where filemap_fault() goes once it dropped the lock (out_retry:). Drop the
// page reference (putPage) if there is a page, the pin (yield* fpin.put(), fput()) if there is one, and
// return ret | VM_FAULT_RETRY.

export function* maybeUnlockMmapForIo(vmf: VmFault, fpin: File | null): Kernel<File | null> {
  // TODO: never drops the lock. Correct, but every mmap() and munmap() waits for the disk.
  void vmf;
  return fpin;
}

export function* lockFolioMaybeDropMmap(vmf: VmFault, folio: Page, fpin: FilePin): Kernel<boolean> {
  // TODO: sleeps on the page lock holding mmap_lock.
  void vmf;
  void fpin;
  yield* lockPage(folio);
  return true;
}

export function* outRetry(folio: Page | null, fpin: File | null, ret: number): Kernel<number> {
  // TODO: drop the references.
  void folio;
  void fpin;
  return ret | VM_FAULT_RETRY;
}
