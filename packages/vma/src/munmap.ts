import type { Kernel } from '@spf/machine';
import { Errno, type ErrnoValue, fail, ok, type SysResult } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { MmuGather } from './page-table-ops.js';
import { PAGE_SIZE, pageAlign } from './vm-flags.js';
import type { VmArea } from './vm-area.js';
import { vmaStartWrite } from './vma-lock.js';
import { splitVma } from './vma-merge.js';

/** FIRST_USER_ADDRESS and USER_PGTABLES_CEILING on x86-64. */
const FIRST_USER_ADDRESS = 0;
const USER_PGTABLES_CEILING = 0;

/**
 * Models `unmap_region()` in mm/vma.c: zaps the PTEs of the detached VMAs, flushes the TLBs of every CPU
 * in mm_cpumask, and frees the page tables that only covered them (`free_pgtables`), never tables still
 * used by `floor`..start or end..`ceiling`. With `mm.freePgtablesUnderPtl`, the page tables are freed
 * with mm->page_table_lock held as well.
 */
export function* unmapRegion(
  mm: MmStruct,
  vmas: readonly VmArea[],
  floor: number,
  ceiling: number,
): Kernel<void> {
  if (vmas.length === 0) return;
  const start = vmas[0].vmStart;
  const end = vmas[vmas.length - 1].vmEnd;
  const tlb = new MmuGather(); // tlb_gather_mmu()
  for (const v of vmas) yield* mm.pageTables.zapRange(tlb, v, v.vmStart, v.vmEnd);
  // free_pgtables() write-locks each VMA whose tables it frees (6.4, with the mmap lock held for writing).
  for (const v of vmas) yield* vmaStartWrite(v, 'freePgtables');
  if (mm.freePgtablesUnderPtl) yield* mm.pageTableLock.lock();
  yield* mm.pageTables.freePgtables(tlb, floor, start, end, ceiling);
  if (mm.freePgtablesUnderPtl) yield* mm.pageTableLock.unlock();
  // tlb_finish_mmu(): at most one shootdown, then the pages and page tables are really freed.
  yield* mm.pageTables.tlbFinishMmu(tlb, start, end);
}

/**
 * Models `do_vmi_align_munmap()` and `vms_gather_munmap_vmas()` in mm/vma.c: splits the VMAs at `start`
 * and `end`, detaches everything in between, zaps and frees, and closes the removed VMAs. `start` and
 * `end` are page aligned and `vma` is the first VMA overlapping them. Fails only with ENOMEM when the split
 * would exceed max_map_count, before anything changed.
 */
export function* doVmiAlignMunmap(
  mm: MmStruct,
  vma: VmArea,
  start: number,
  end: number,
): Kernel<ErrnoValue | 0> {
  if (start > vma.vmStart) {
    if (end < vma.vmEnd && mm.mapCount >= mm.maxMapCount) return Errno.ENOMEM;
    const r = yield* splitVma(mm, vma, start, true);
    if (typeof r === 'number') return r;
  }
  const detach: VmArea[] = [];
  let next = mm.findVma(start);
  while (next !== null && next.vmStart < end) {
    if (next.vmEnd > end) {
      const r = yield* splitVma(mm, next, end, false);
      if (typeof r === 'number') return r;
    }
    detach.push(next);
    next = mm.findVma(next.vmEnd);
  }
  const prev = mm.findVmaPrev(start);
  const floor = prev ? prev.vmEnd : FIRST_USER_ADDRESS;
  const ceiling = next ? next.vmStart : USER_PGTABLES_CEILING;
  // Detach from the tree (readers stop finding them), then tear down.
  for (const v of detach) {
    mm.vmStatAccount(v.vmFlags, -v.pages);
  }
  yield* detachAll(mm, detach);
  yield* unmapRegion(mm, detach, floor, ceiling);
  for (const v of detach) yield* removeDetached(mm, v);
  return 0;
}

function* detachAll(mm: MmStruct, vmas: readonly VmArea[]): Kernel<void> {
  if (vmas.length === 0) return;
  const tx = mm.beginTree();
  for (const v of vmas) yield* mm.detachVma(tx, v);
  yield* mm.commitTree(tx);
  mm.mapCount -= vmas.length;
}

function* removeDetached(mm: MmStruct, vma: VmArea): Kernel<void> {
  yield* mm.removeVma(vma);
}

/**
 * Models `do_vmi_munmap()` in mm/vma.c: the argument checks of munmap(2), then the unmap.
 * EINVAL for an unaligned start, a range beyond TASK_SIZE or a zero length.
 */
export function* doMunmap(mm: MmStruct, start: number, len: number): Kernel<SysResult<0>> {
  if (!validArg(start) || !validArg(len)) return fail(Errno.EINVAL);
  if (start % PAGE_SIZE !== 0 || start > mm.taskSize || len > mm.taskSize - start) return fail(Errno.EINVAL);
  const end = start + pageAlign(len);
  if (end === start) return fail(Errno.EINVAL);
  const vma = mm.findVma(start);
  if (vma === null || vma.vmStart >= end) return ok(0);
  const r = yield* doVmiAlignMunmap(mm, vma, start, end);
  return r === 0 ? ok(0) : fail(r);
}

/** Models the munmap(2) system call (`__vm_munmap`): takes the mmap lock for writing. */
export function* sysMunmap(mm: MmStruct, addr: number, len: number): Kernel<SysResult<0>> {
  yield* mm.mmapWriteLock();
  try {
    return yield* doMunmap(mm, addr, len);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
}

/** A syscall argument: an unsigned long, as a non-negative safe integer. */
export function validArg(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}
