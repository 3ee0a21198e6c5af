import { type Kernel, kassert } from '@spf/machine';
import { checkMm } from './memory/mm-counter.js';
import type { MmStruct } from './mm-struct.js';
import { doMunmap } from './munmap.js';

/**
 * Models `exit_mmap()` in mm/mmap.c (with `mm_free_pgd()`): when the last user of the address space goes
 * away, unmaps every VMA under the mmap write lock (pages zapped and released, RSS back to zero, VMAs and
 * their files released, so a shared anonymous mapping's shmem pages go with its last VMA), then frees every
 * page-table page, the top level included, after each CPU has dropped the address space; then, as
 * `__mmdrop()` does, `check_mm()` ({@link checkMm}: every RSS counter sums to 0). Used by the kernel's process
 * exit and by fork's failure path; the mm must not be used afterwards.
 */
export function* exitMmap(mm: MmStruct): Kernel<void> {
  yield* mm.mmapWriteLock();
  try {
    if (mm.mapCount > 0) {
      const r = yield* doMunmap(mm, 0, mm.taskSize);
      kassert(r.ok, () => `exit_mmap of ${mm}: unmapping everything failed with errno ${r.ok ? 0 : r.errno}`);
    }
  } finally {
    yield* mm.mmapWriteUnlock();
  }
  mm.pageTables.destroy();
  yield* checkMm(mm);
}

/**
 * Models `mmput()` in kernel/fork.c: drops a user of the mm; the last one tears the address space down
 * with {@link exitMmap}. Returns true when it did.
 */
export function* mmput(mm: MmStruct): Kernel<boolean> {
  const users = yield* mm.mmUsers.addReturn(-1);
  if (users !== 0) return false;
  yield* exitMmap(mm);
  yield* mm.mmCount.addReturn(-1);
  return true;
}

/** Models `mmget()`: a new user (a thread, or a task borrowing the mm) of the address space. */
export function* mmget(mm: MmStruct): Kernel<void> {
  yield* mm.mmUsers.addReturn(1);
}
