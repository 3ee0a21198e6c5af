import type { Kernel } from '@spf/machine';
import type { MmStruct } from './mm-struct.js';
import { doMunmap } from './munmap.js';

/**
 * Models `exit_mmap()` in mm/mmap.c: unmaps every VMA (pages released, RSS back to zero, page tables
 * freed) when the last user of the address space goes away. Takes the mmap lock for writing.
 */
export function* exitMmap(mm: MmStruct): Kernel<void> {
  yield* mm.mmapWriteLock();
  try {
    if (mm.mapCount > 0) yield* doMunmap(mm, 0, mm.taskSize);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
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
