import { type ErrnoValue, Errno } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { MAP_FIXED, PAGE_SIZE, VM_GROWSDOWN } from './vm-flags.js';
import type { VmArea } from './vm-area.js';

/** x86-64 DEFAULT_MAP_WINDOW: the 47-bit user space (addresses above need an explicit hint with LA57). */
const DEFAULT_MAP_WINDOW = 0x7ffffffff000;

/** Models `vm_start_gap()` in include/linux/mm.h: a VM_GROWSDOWN VMA reserves a guard gap below it. */
export function vmStartGap(mm: MmStruct, vma: VmArea): number {
  if (vma.vmFlags & VM_GROWSDOWN) return Math.max(0, vma.vmStart - mm.stackGuardGap);
  return vma.vmStart;
}

/** Models `mmap_address_hint_valid()` in arch/x86/kernel/sys_x86_64.c. */
function hintValid(mm: MmStruct, addr: number, len: number): boolean {
  if (mm.taskSize - len < addr) return false;
  return addr > DEFAULT_MAP_WINDOW === addr + len > DEFAULT_MAP_WINDOW;
}

/**
 * Models `unmapped_area_topdown()` in mm/mmap.c: the highest address `a` with [a, a+len) free, inside
 * [low, high), and ending at or below the guard gap of the VMA above. Returns -1 if there is none.
 * Simplification: the maple tree finds the gap in O(log n) with per-node gap sizes; we walk the VMAs
 * downwards from `high`, which is linear in the number of VMAs above the gap found.
 */
export function unmappedAreaTopdown(mm: MmStruct, len: number, lowLimit: number, highLimit: number): number {
  const low = Math.max(lowLimit, mm.mmapMinAddr);
  let next: VmArea | null = mm.findVma(highLimit - 1);
  let prev: VmArea | null = next === null ? mm.findVmaPrev(highLimit) : mm.findVmaPrev(next.vmStart);
  for (;;) {
    const gapStart = prev ? prev.vmEnd : 0;
    const gapEnd = next ? vmStartGap(mm, next) : Number.POSITIVE_INFINITY;
    const s = Math.max(gapStart, low);
    const e = Math.min(gapEnd, highLimit);
    if (e - s >= len) return e - len;
    if (prev === null || gapStart <= low) return -1;
    next = prev;
    prev = mm.findVmaPrev(prev.vmStart);
  }
}

/** Models `unmapped_area()` in mm/mmap.c: the lowest free [a, a+len) inside [low, high). -1 if none. */
export function unmappedArea(mm: MmStruct, len: number, lowLimit: number, highLimit: number): number {
  const low = Math.max(lowLimit, mm.mmapMinAddr);
  let prev = mm.findVmaPrev(low);
  let next = mm.findVma(prev ? prev.vmEnd : low);
  for (;;) {
    const gapStart = prev ? prev.vmEnd : 0;
    const gapEnd = next ? vmStartGap(mm, next) : Number.POSITIVE_INFINITY;
    const s = Math.max(gapStart, low);
    const e = Math.min(gapEnd, highLimit);
    if (e - s >= len && s + len <= highLimit) return s;
    if (next === null || next.vmEnd >= highLimit) return -1;
    prev = next;
    next = mm.findVma(next.vmEnd);
  }
}

/**
 * Models `__get_unmapped_area()` (mm/mmap.c) with x86-64's `arch_get_unmapped_area_topdown()` and its
 * bottom-up fallback: MAP_FIXED returns `addr` after the range checks; a hint is used when the range is
 * free (rounded down to a page); otherwise the highest gap below mmap_base. Returns an address or an errno.
 */
export function getUnmappedArea(
  mm: MmStruct,
  addr: number,
  len: number,
  flags: number,
): { addr: number } | { errno: ErrnoValue } {
  if (len > mm.taskSize) return { errno: Errno.ENOMEM };
  let result: number;
  if (flags & MAP_FIXED) {
    result = addr;
  } else {
    result = -1;
    if (addr) {
      const hint = addr - (addr % PAGE_SIZE);
      if (hintValid(mm, hint, len)) {
        const vma = mm.findVma(hint);
        if (vma === null || hint + len <= vmStartGap(mm, vma)) result = hint;
      }
    }
    if (result === -1) result = unmappedAreaTopdown(mm, len, PAGE_SIZE, mm.mmapBase);
    if (result === -1) {
      // arch_get_unmapped_area(): bottom-up from TASK_UNMAPPED_BASE (a third of the address space).
      const legacyBase = Math.ceil(mm.taskSize / 3 / PAGE_SIZE) * PAGE_SIZE;
      result = unmappedArea(mm, len, legacyBase, mm.taskSize);
    }
    if (result === -1) return { errno: Errno.ENOMEM };
  }
  if (result > mm.taskSize - len) return { errno: Errno.ENOMEM };
  if (result % PAGE_SIZE !== 0) return { errno: Errno.EINVAL };
  return { addr: result };
}
