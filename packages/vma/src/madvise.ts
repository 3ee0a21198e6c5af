import type { Kernel } from '@spf/machine';
import { Errno, fail, ok, type SysResult } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { validArg } from './munmap.js';
import {
  MADV_DONTNEED,
  MADV_WILLNEED,
  PAGE_SIZE,
  pageAlign,
  VM_HUGETLB,
  VM_LOCKED,
  VM_PFNMAP,
} from './vm-flags.js';

/**
 * Models `do_madvise()` in mm/madvise.c for MADV_DONTNEED (zap the pages of the range; the next access
 * faults in zero-filled or file pages) and MADV_WILLNEED (accepted, no effect here). Other advice values
 * are not modelled and give EINVAL. Like Linux, holes in the range give ENOMEM after the mapped parts were
 * handled. DONTNEED only needs the mmap lock for reading.
 */
export function* doMadvise(mm: MmStruct, start: number, lenIn: number, advice: number): Kernel<SysResult<0>> {
  if (advice !== MADV_DONTNEED && advice !== MADV_WILLNEED) return fail(Errno.EINVAL);
  if (!validArg(start) || !validArg(lenIn)) return fail(Errno.EINVAL);
  if (start % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
  const len = pageAlign(lenIn);
  const end = start + len;
  if (end < start || end > 2 ** 64) return fail(Errno.EINVAL);
  if (end === start) return ok(0);
  let unmappedError = 0;
  let vma = mm.findVma(start);
  for (;;) {
    if (vma === null) return fail(Errno.ENOMEM);
    if (start < vma.vmStart) {
      unmappedError = Errno.ENOMEM;
      start = vma.vmStart;
      if (start >= end) break;
    }
    const tmp = Math.min(vma.vmEnd, end);
    if (advice === MADV_DONTNEED) {
      if (vma.vmFlags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return fail(Errno.EINVAL);
      yield* mm.pageTables.zapRange(vma, start, tmp);
      yield* mm.pageTables.flushTlbRange(start, tmp);
    }
    start = tmp;
    if (start >= end) break;
    vma = mm.findVma(start);
  }
  return unmappedError ? fail(Errno.ENOMEM) : ok(0);
}

/** Models the madvise(2) system call: MADV_DONTNEED runs under the mmap lock held for reading. */
export function* sysMadvise(mm: MmStruct, start: number, len: number, advice: number): Kernel<SysResult<0>> {
  yield* mm.mmapReadLock();
  try {
    return yield* doMadvise(mm, start, len, advice);
  } finally {
    yield* mm.mmapReadUnlock();
  }
}
