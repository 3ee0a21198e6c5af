import type { Kernel } from '@spf/machine';
import { Errno, type ErrnoValue, fail, ok, type SysResult } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { MmuGather } from './page-table-ops.js';
import { validArg } from './munmap.js';
import type { VmArea } from './vm-area.js';
import { vmFlagsReset } from './vm-flags-reset.js';
import {
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  PAGE_SIZE,
  pageAlign,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WIPEONFORK,
} from './vm-flags.js';
import { vmaModifyFlags } from './vma-merge.js';

// The advice values after MADV_DONTNEED (include/uapi/asm-generic/mman-common.h); MADV_NORMAL to
// MADV_DONTNEED are in vm-flags.ts.
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const MADV_DONTNEED_LOCKED = 24;
export const MADV_COLLAPSE = 25;
export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;
export const MADV_GUARD_INSTALL = 102;
export const MADV_GUARD_REMOVE = 103;

/**
 * How faithfully this package models an advice value:
 * - `modelled`: Linux's effect on the VMAs and page tables is reproduced.
 * - `validated`: the arguments and the VMAs are checked exactly as Linux does (same errnos), but the effect
 *   itself is not reproduced. For WILLNEED, FREE, COLD and PAGEOUT it acts on machinery this model does not
 *   have (LRU lists, reclaim, swap, readahead), the call succeeds and nothing observable changes — what
 *   Linux does too whenever that machinery has nothing to act on. MADV_REMOVE on a shared writable file
 *   mapping, where Linux would punch a hole into the file, fails with EOPNOTSUPP (the answer of a file
 *   system without fallocate) instead of pretending.
 * - `not-modelled`: a value Linux 6.x accepts but this model cannot honour. madvise() refuses it with
 *   EINVAL — what a kernel built without the feature returns (CONFIG_KSM=n, CONFIG_MEMORY_FAILURE=n, or a
 *   kernel older than the value) — instead of pretending it worked.
 */
export type MadviseSupport = 'modelled' | 'validated' | 'not-modelled';

/** What this package does with one advice value (see {@link madviseBehavior}). */
export type MadviseBehavior = {
  /** The uapi name, `MADV_RANDOM`. */
  readonly name: string;
  readonly support: MadviseSupport;
  /** Whether Linux takes the mmap lock for writing (`madvise_need_mmap_write()`): the vm_flags advice. */
  readonly mmapWrite: boolean;
  /** What is modelled, or why not. */
  readonly note: string;
};

const FLAGS_NOTE = 'changes vm_flags over the range, splitting and merging VMAs like mprotect';

const behaviors = new Map<number, MadviseBehavior>(
  (
    [
      [MADV_NORMAL, 'MADV_NORMAL', 'modelled', true, `${FLAGS_NOTE} (clears VM_RAND_READ, VM_SEQ_READ)`],
      [MADV_RANDOM, 'MADV_RANDOM', 'modelled', true, `${FLAGS_NOTE} (VM_RAND_READ)`],
      [MADV_SEQUENTIAL, 'MADV_SEQUENTIAL', 'modelled', true, `${FLAGS_NOTE} (VM_SEQ_READ)`],
      [
        MADV_WILLNEED,
        'MADV_WILLNEED',
        'validated',
        false,
        'swap-in and file readahead are not modelled here (no swap; the page cache is @spf/file-backed)',
      ],
      [MADV_DONTNEED, 'MADV_DONTNEED', 'modelled', false, 'zaps the pages; the next access faults afresh'],
      [
        MADV_FREE,
        'MADV_FREE',
        'validated',
        false,
        'private anonymous VMAs only; the pages stay: Linux frees them lazily only under memory pressure, and there is no reclaim here',
      ],
      [
        MADV_REMOVE,
        'MADV_REMOVE',
        'validated',
        false,
        'checks as Linux (EINVAL locked or anonymous, EACCES not shared-writable); hole punching (fallocate) is not modelled: EOPNOTSUPP',
      ],
      [MADV_DONTFORK, 'MADV_DONTFORK', 'modelled', true, `${FLAGS_NOTE} (VM_DONTCOPY: fork skips the VMA)`],
      [MADV_DOFORK, 'MADV_DOFORK', 'modelled', true, `${FLAGS_NOTE} (clears VM_DONTCOPY; EINVAL on VM_IO)`],
      [
        MADV_MERGEABLE,
        'MADV_MERGEABLE',
        'not-modelled',
        true,
        'KSM is not modelled (VM_MERGEABLE is bit 31): EINVAL as with CONFIG_KSM=n',
      ],
      [
        MADV_UNMERGEABLE,
        'MADV_UNMERGEABLE',
        'not-modelled',
        true,
        'KSM is not modelled (VM_MERGEABLE is bit 31): EINVAL as with CONFIG_KSM=n',
      ],
      [
        MADV_HUGEPAGE,
        'MADV_HUGEPAGE',
        'modelled',
        true,
        `${FLAGS_NOTE} (VM_HUGEPAGE, clears VM_NOHUGEPAGE); faults still map 4 KiB pages: no THP here`,
      ],
      [
        MADV_NOHUGEPAGE,
        'MADV_NOHUGEPAGE',
        'modelled',
        true,
        `${FLAGS_NOTE} (VM_NOHUGEPAGE, clears VM_HUGEPAGE)`,
      ],
      [MADV_DONTDUMP, 'MADV_DONTDUMP', 'modelled', true, `${FLAGS_NOTE} (VM_DONTDUMP)`],
      [
        MADV_DODUMP,
        'MADV_DODUMP',
        'modelled',
        true,
        `${FLAGS_NOTE} (clears VM_DONTDUMP; EINVAL on VM_SPECIAL)`,
      ],
      [
        MADV_WIPEONFORK,
        'MADV_WIPEONFORK',
        'modelled',
        true,
        `${FLAGS_NOTE} (VM_WIPEONFORK: the child gets zero-filled memory; private anonymous VMAs only)`,
      ],
      [MADV_KEEPONFORK, 'MADV_KEEPONFORK', 'modelled', true, `${FLAGS_NOTE} (clears VM_WIPEONFORK)`],
      [
        MADV_COLD,
        'MADV_COLD',
        'validated',
        false,
        'checks as Linux (EINVAL on locked/PFN/hugetlb VMAs); LRU deactivation has no counterpart here',
      ],
      [
        MADV_PAGEOUT,
        'MADV_PAGEOUT',
        'validated',
        false,
        'checks as Linux (EINVAL on locked/PFN/hugetlb VMAs); anonymous pages stay as on Linux without swap; dropping clean file pages is not modelled',
      ],
      [
        MADV_POPULATE_READ,
        'MADV_POPULATE_READ',
        'not-modelled',
        false,
        'needs the fault handler, which lives above @spf/vma: EINVAL as before Linux 5.14',
      ],
      [
        MADV_POPULATE_WRITE,
        'MADV_POPULATE_WRITE',
        'not-modelled',
        false,
        'needs the fault handler, which lives above @spf/vma: EINVAL as before Linux 5.14',
      ],
      [
        MADV_DONTNEED_LOCKED,
        'MADV_DONTNEED_LOCKED',
        'modelled',
        false,
        'MADV_DONTNEED that also zaps VM_LOCKED VMAs',
      ],
      [
        MADV_COLLAPSE,
        'MADV_COLLAPSE',
        'not-modelled',
        false,
        'transparent huge pages are not modelled: EINVAL as with CONFIG_TRANSPARENT_HUGEPAGE=n',
      ],
      [
        MADV_HWPOISON,
        'MADV_HWPOISON',
        'not-modelled',
        true,
        'memory-failure injection is not modelled: EINVAL as with CONFIG_MEMORY_FAILURE=n',
      ],
      [
        MADV_SOFT_OFFLINE,
        'MADV_SOFT_OFFLINE',
        'not-modelled',
        true,
        'memory-failure injection is not modelled: EINVAL as with CONFIG_MEMORY_FAILURE=n',
      ],
      [
        MADV_GUARD_INSTALL,
        'MADV_GUARD_INSTALL',
        'not-modelled',
        false,
        'guard PTE markers are not modelled in @spf/pagetable: EINVAL as before Linux 6.13',
      ],
      [
        MADV_GUARD_REMOVE,
        'MADV_GUARD_REMOVE',
        'not-modelled',
        false,
        'guard PTE markers are not modelled in @spf/pagetable: EINVAL as before Linux 6.13',
      ],
    ] as const
  ).map(([advice, name, support, mmapWrite, note]) => [advice, { name, support, mmapWrite, note }]),
);

/**
 * What this package does with `advice`: a {@link MadviseBehavior} for every value Linux 6.x knows, null
 * for any other number (madvise() gives EINVAL for those, as Linux does).
 */
export function madviseBehavior(advice: number): MadviseBehavior | null {
  return behaviors.get(advice) ?? null;
}

/**
 * Models `madvise_need_mmap_write()` in mm/madvise.c: the advice values that change vm_flags need the mmap
 * lock for writing; the others (DONTNEED, FREE, WILLNEED, REMOVE, COLD, PAGEOUT...) only walk the VMAs
 * and take it for reading. Unknown values default to writing, as in Linux.
 */
export function madviseNeedMmapWrite(advice: number): boolean {
  return behaviors.get(advice)?.mmapWrite ?? true;
}

/**
 * Models `is_valid_madvise()` in mm/madvise.c: the advice is one this model honours, `start` is page
 * aligned and `start + PAGE_ALIGN(len)` does not wrap. Linux checks the advice first; all three give EINVAL.
 */
function validMadvise(start: number, len: number, advice: number): boolean {
  const b = behaviors.get(advice);
  if (b === undefined || b.support === 'not-modelled') return false;
  if (!validArg(start) || !validArg(len) || start % PAGE_SIZE !== 0) return false;
  return start + pageAlign(len) <= 2 ** 64;
}

/**
 * Models `madvise_update_vma()` in mm/madvise.c: gives [start, end) of `vma` the flags `newFlags` through
 * `vma_modify_flags()` (merge with a neighbour, else split at the range ends, as mprotect does), then
 * resets the flags of the VMA that covers the range. Returns that VMA (the next `prev`) or an errno;
 * ENOMEM from a split over max_map_count becomes EAGAIN, as madvise_vma_behavior() converts it.
 */
function* madviseUpdateVma(
  mm: MmStruct,
  vma: VmArea,
  prev: VmArea | null,
  start: number,
  end: number,
  newFlags: number,
): Kernel<VmArea | ErrnoValue> {
  if (newFlags === vma.vmFlags) return vma;
  const r = yield* vmaModifyFlags(mm, prev, vma, start, end, newFlags);
  if (typeof r === 'number') return r === Errno.ENOMEM ? Errno.EAGAIN : r;
  yield* vmFlagsReset(r, newFlags);
  return r;
}

/**
 * Models `madvise_dontneed_free_valid_vma()`: PFN maps never, VM_LOCKED only for MADV_DONTNEED_LOCKED.
 * Hugetlb VMAs (which mmap never creates here: no huge pages are reserved) are refused.
 */
function dontneedFreeValid(vma: VmArea, advice: number): boolean {
  if (vma.vmFlags & VM_HUGETLB) return false;
  const forbidden = advice === MADV_DONTNEED_LOCKED ? VM_PFNMAP : VM_PFNMAP | VM_LOCKED;
  return (vma.vmFlags & forbidden) === 0;
}

/**
 * Models `madvise_vma_behavior()` in mm/madvise.c for one VMA and the part [start, end) of the request
 * inside it. Returns the new `prev` of the walk (null after MADV_REMOVE, which in Linux drops the mmap
 * lock) or an errno. Sealed VMAs (`can_modify_vma_madv`, EPERM) and VM_DROPPABLE do not exist here.
 */
function* madviseVmaBehavior(
  mm: MmStruct,
  vma: VmArea,
  prev: VmArea | null,
  start: number,
  end: number,
  advice: number,
): Kernel<VmArea | null | ErrnoValue> {
  const flags = vma.vmFlags;
  let newFlags = flags;
  switch (advice) {
    case MADV_REMOVE:
      // madvise_remove(): only a shared writable file mapping can have a hole punched into its file.
      if (flags & VM_LOCKED) return Errno.EINVAL;
      if (vma.vmFile === null) return Errno.EINVAL;
      if ((flags & (VM_SHARED | VM_MAYWRITE)) !== (VM_SHARED | VM_MAYWRITE)) return Errno.EACCES;
      // vfs_fallocate(FALLOC_FL_PUNCH_HOLE) is not modelled: answer as for a file without ->fallocate.
      return Errno.EOPNOTSUPP;
    case MADV_WILLNEED:
      // madvise_willneed(): swap-in of anonymous swap entries (there is no swap) or file readahead.
      return vma;
    case MADV_COLD:
    case MADV_PAGEOUT:
      // can_madv_lru_vma(); the deactivation or reclaim itself has nothing to act on here.
      if (flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return Errno.EINVAL;
      return vma;
    case MADV_FREE:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED: {
      // madvise_dontneed_free().
      if (!dontneedFreeValid(vma, advice)) return Errno.EINVAL;
      if (advice === MADV_FREE) {
        // madvise_free_single_vma(): anonymous VMAs only. Marking the pages lazyfree only matters to
        // reclaim, which this model does not have, so the contents stay until the next write or munmap.
        if (!vma.isAnonymous()) return Errno.EINVAL;
        return vma;
      }
      const tlb = new MmuGather(); // zap_page_range_single()
      yield* mm.pageTables.zapRange(tlb, vma, start, end);
      yield* mm.pageTables.tlbFinishMmu(tlb, start, end);
      return vma;
    }
    case MADV_NORMAL:
      newFlags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case MADV_SEQUENTIAL:
      newFlags = (newFlags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case MADV_RANDOM:
      newFlags = (newFlags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case MADV_DONTFORK:
      newFlags |= VM_DONTCOPY;
      break;
    case MADV_DOFORK:
      if (flags & VM_IO) return Errno.EINVAL;
      newFlags &= ~VM_DONTCOPY;
      break;
    case MADV_WIPEONFORK:
      if (vma.vmFile !== null || flags & VM_SHARED) return Errno.EINVAL;
      newFlags |= VM_WIPEONFORK;
      break;
    case MADV_KEEPONFORK:
      newFlags &= ~VM_WIPEONFORK;
      break;
    case MADV_DONTDUMP:
      newFlags |= VM_DONTDUMP;
      break;
    case MADV_DODUMP:
      if (!(flags & VM_HUGETLB) && newFlags & VM_SPECIAL) return Errno.EINVAL;
      newFlags &= ~VM_DONTDUMP;
      break;
    case MADV_HUGEPAGE:
      // hugepage_madvise() in mm/khugepaged.c (khugepaged registration has no counterpart here).
      newFlags = (newFlags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      break;
    case MADV_NOHUGEPAGE:
      newFlags = (newFlags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
      break;
    default:
      // validMadvise() lets no other value through.
      return Errno.EINVAL;
  }
  return yield* madviseUpdateVma(mm, vma, prev, start, end, newFlags);
}

/**
 * Models `do_madvise()` and `madvise_walk_vmas()` in mm/madvise.c (Linux 6.x) for the advice values
 * {@link madviseBehavior} lists as modelled or validated; values Linux rejects, and the ones this model
 * cannot honour (`not-modelled`), give EINVAL. The caller holds the mmap lock, for writing when
 * {@link madviseNeedMmapWrite} says so.
 *
 * Checks in Linux's order: the advice, then `start` alignment and `start + len` overflow (all EINVAL);
 * `len == 0` (after those checks) succeeds without touching anything. The range is then walked VMA by
 * VMA: holes are skipped and reported as ENOMEM at the end, after the mapped parts were handled, as Linux
 * does. A VMA the advice is invalid for (EINVAL, EACCES, EAGAIN...) stops the walk with that errno; like
 * Linux, the VMAs before it keep the advice they already received. A failure on the first VMA changes
 * nothing.
 */
export function* doMadvise(mm: MmStruct, start: number, lenIn: number, advice: number): Kernel<SysResult<0>> {
  if (!validMadvise(start, lenIn, advice)) return fail(Errno.EINVAL);
  const end = start + pageAlign(lenIn);
  if (end === start) return ok(0);
  let vma = mm.findVma(start);
  // find_vma_prev(): the VMA before the range, or the one containing `start` when it starts before it.
  let prev: VmArea | null = vma === null ? mm.findVmaPrev(start) : mm.findVmaPrev(vma.vmStart);
  if (vma !== null && start > vma.vmStart) prev = vma;
  let unmapped = false;
  for (;;) {
    if (vma === null) return fail(Errno.ENOMEM);
    if (start < vma.vmStart) {
      unmapped = true;
      start = vma.vmStart;
      if (start >= end) break;
    }
    const tmp = Math.min(vma.vmEnd, end);
    const r = yield* madviseVmaBehavior(mm, vma, prev, start, tmp, advice);
    if (typeof r === 'number') return fail(r);
    prev = r;
    start = tmp;
    // A merge may have grown prev past this VMA: continue behind it.
    if (prev !== null && start < prev.vmEnd) start = prev.vmEnd;
    if (start >= end) break;
    vma = mm.findVma(prev !== null ? prev.vmEnd : start);
  }
  return unmapped ? fail(Errno.ENOMEM) : ok(0);
}

/**
 * Models the madvise(2) system call (`do_madvise()` with `madvise_lock()`): arguments that are invalid
 * fail before any lock is taken; otherwise the mmap lock is held for writing for the vm_flags advice and
 * for reading for the others (see {@link madviseNeedMmapWrite}).
 */
export function* sysMadvise(mm: MmStruct, start: number, len: number, advice: number): Kernel<SysResult<0>> {
  if (!validMadvise(start, len, advice)) return fail(Errno.EINVAL);
  if (pageAlign(len) === 0) return ok(0);
  const write = madviseNeedMmapWrite(advice);
  if (write) yield* mm.mmapWriteLock();
  else yield* mm.mmapReadLock();
  try {
    return yield* doMadvise(mm, start, len, advice);
  } finally {
    if (write) yield* mm.mmapWriteUnlock();
    else yield* mm.mmapReadUnlock();
  }
}
