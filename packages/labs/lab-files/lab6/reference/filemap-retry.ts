import {
  FAULT_FLAG_RETRY_NOWAIT,
  faultFlagAllowRetryFirst,
  releaseFaultLock,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import type { File, FilePin } from '@spf/file-backed';
import type { Kernel } from '@spf/machine';
import { lockPage, type Page, putPage, trylockPage } from '@spf/pagetable';
import type { VmFault } from '@spf/vma';

// Lab 6, part 1: the pieces of filemap_fault() (mm/filemap.c) that let a fault wait for the disk without
// holding mmap_lock.

/**
 * maybe_unlock_mmap_for_io(): about to wait for I/O. On the first attempt of a fault that may retry, pin the
 * file and drop the fault lock; the pin is what filemap_fault() hands back, and it returns VM_FAULT_RETRY.
 */
export function* maybeUnlockMmapForIo(vmf: VmFault, fpin: File | null): Kernel<File | null> {
  if (fpin !== null) return fpin; // already dropped (and pinned) earlier in this fault
  if (faultFlagAllowRetryFirst(vmf.flags) && (vmf.flags & FAULT_FLAG_RETRY_NOWAIT) === 0) {
    const file = vmf.vma.vmFile as File;
    file.get(); // get_file(): once the lock is gone, munmap may drop the VMA's reference
    yield* releaseFaultLock(vmf);
    return file;
  }
  return null;
}

/**
 * lock_folio_maybe_drop_mmap(): lock the page; if that means sleeping (a read holds it), drop the fault lock
 * first when allowed. False only for FAULT_FLAG_RETRY_NOWAIT: retry at once, the lock still held.
 */
export function* lockFolioMaybeDropMmap(vmf: VmFault, folio: Page, fpin: FilePin): Kernel<boolean> {
  if (yield* trylockPage(folio)) return true;
  if ((vmf.flags & FAULT_FLAG_RETRY_NOWAIT) !== 0) return false;
  fpin.file = yield* maybeUnlockMmapForIo(vmf, fpin.file);
  // FAULT_FLAG_KILLABLE would make this __folio_lock_killable(); no signal wakes a sleeper on this machine.
  yield* lockPage(folio);
  return true;
}

/** out_retry: drop the page reference and the pin, and ask do_user_addr_fault() to retry. */
export function* outRetry(folio: Page | null, fpin: File | null, ret: number): Kernel<number> {
  if (folio !== null) yield* putPage(folio);
  if (fpin !== null) yield* fpin.put();
  return ret | VM_FAULT_RETRY;
}
