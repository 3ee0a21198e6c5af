import type { Kernel } from '@spf/machine';
import { vmStartGap } from './get-unmapped-area.js';
import type { MmStruct } from './mm-struct.js';
import { doVmiAlignMunmap, validArg } from './munmap.js';
import { PAGE_SIZE, pageAlign, VM_ACCOUNT, VM_DATA_DEFAULT_FLAGS, VM_SOFTDIRTY } from './vm-flags.js';
import { VmArea, vmaWriteOnce } from './vm-area.js';
import { commitVmaChanges, vmaMergeNewRange } from './vma-merge.js';

/**
 * Models `do_brk_flags()` in mm/vma.c: extends the heap VMA `brkVma` by [addr, addr+len) when it ends at
 * `addr` (expand-only merge), else inserts a new anonymous VMA. Returns false on ENOMEM.
 */
function* doBrkFlags(mm: MmStruct, brkVma: VmArea | null, addr: number, len: number): Kernel<boolean> {
  const flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT;
  const pages = len / PAGE_SIZE;
  if (!mm.mayExpandVm(pages)) return false;
  if (mm.mapCount > mm.maxMapCount) return false;
  let vma: VmArea | null = null;
  if (brkVma !== null && brkVma.vmEnd === addr) {
    vma = yield* vmaMergeNewRange(mm, {
      prev: brkVma,
      middle: null,
      next: null,
      start: addr,
      end: addr + len,
      pgoff: addr / PAGE_SIZE,
      flags,
      file: null,
      ops: null,
      anonVma: null,
      justExpand: true,
    });
  }
  if (vma === null) {
    vma = new VmArea(mm, addr, addr + len, flags, addr / PAGE_SIZE);
    yield* commitVmaChanges(mm, [], [], [vma]);
  }
  mm.vmStatAccount(flags, pages);
  yield* vmaWriteOnce(vma, 'vmFlags', vma.vmFlags | VM_SOFTDIRTY);
  return true;
}

/**
 * Models the brk(2) system call (mm/mmap.c): moves the program break. Returns the new break on success
 * and the old one on failure, as the kernel does (brk has no errno). Shrinking unmaps the freed pages;
 * growing must leave a page plus the stack guard gap before the next mapping.
 */
export function* sysBrk(mm: MmStruct, brk: number): Kernel<number> {
  yield* mm.mmapWriteLock();
  try {
    return yield* doBrk(mm, brk);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
}

/** brk(2) without the locking (the caller holds the mmap lock for writing). */
export function* doBrk(mm: MmStruct, brk: number): Kernel<number> {
  const origbrk = mm.brk;
  if (!validArg(brk) || brk < mm.startBrk || brk > mm.taskSize) return origbrk;
  const newbrk = pageAlign(brk);
  const oldbrk = pageAlign(mm.brk);
  if (oldbrk === newbrk) {
    mm.brk = brk;
    return brk;
  }
  if (brk <= mm.brk) {
    const brkVma = mm.findVma(newbrk);
    if (brkVma === null || brkVma.vmStart >= oldbrk) return origbrk;
    mm.brk = brk;
    const r = yield* doVmiAlignMunmap(mm, brkVma, newbrk, oldbrk);
    if (r !== 0) {
      mm.brk = origbrk;
      return origbrk;
    }
    return brk;
  }
  const next = mm.findVma(oldbrk);
  if (next !== null && next.vmStart < newbrk + PAGE_SIZE + mm.stackGuardGap) {
    if (newbrk + PAGE_SIZE > vmStartGap(mm, next)) return origbrk;
  }
  let brkVma = mm.findVmaPrev(oldbrk);
  if (brkVma !== null && brkVma.vmEnd <= mm.startBrk) brkVma = null;
  if (!(yield* doBrkFlags(mm, brkVma, oldbrk, newbrk - oldbrk))) return origbrk;
  mm.brk = brk;
  return brk;
}
