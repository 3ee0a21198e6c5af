import { type ErrnoValue, Errno } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { MAP_FIXED, MAP_SHARED, PAGE_SIZE, VM_GROWSDOWN, VM_STARTGAP_FLAGS } from './vm-flags.js';
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
 * [low, high), and ending at or below the guard gap of the VMA above. Returns -1 if there is none. As in
 * Linux, the tree finds the highest raw gap that fits (skipping subtrees by their gap summaries); if the
 * VMA above it is a stack whose guard gap reaches into the candidate, the search is retried below it.
 */
export function unmappedAreaTopdown(mm: MmStruct, len: number, lowLimit: number, highLimit: number): number {
  const low = Math.max(lowLimit, mm.mmapMinAddr);
  let high = highLimit;
  for (;;) {
    if (high <= low) return -1;
    const g = mm.tree.gapAreaRev(len, low, high);
    if (g === null) return -1;
    const next = g.next?.value ?? null;
    if (next !== null && next.vmFlags & VM_STARTGAP_FLAGS && vmStartGap(mm, next) < g.end) {
      high = vmStartGap(mm, next);
      continue;
    }
    return g.end - len;
  }
}

/** The same search by walking the VMAs one by one (the reference the tree search is tested against). */
export function unmappedAreaTopdownLinear(
  mm: MmStruct,
  len: number,
  lowLimit: number,
  highLimit: number,
): number {
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

/** PMD_SIZE: the size of a transparent huge page. */
const PMD_SIZE = 2 * 1024 * 1024;

/** The x86-64 topdown allocator with its hint check and bottom-up fallback (no MAP_FIXED). */
function archGetUnmappedAreaTopdown(mm: MmStruct, addr: number, len: number): number {
  if (addr) {
    const hint = addr - (addr % PAGE_SIZE);
    if (hintValid(mm, hint, len)) {
      const vma = mm.findVma(hint);
      if (vma === null || hint + len <= vmStartGap(mm, vma)) return hint;
    }
  }
  const r = unmappedAreaTopdown(mm, len, PAGE_SIZE, mm.mmapBase);
  if (r !== -1) return r;
  // arch_get_unmapped_area(): bottom-up from TASK_UNMAPPED_BASE (a third of the address space).
  const legacyBase = Math.ceil(mm.taskSize / 3 / PAGE_SIZE) * PAGE_SIZE;
  return unmappedArea(mm, len, legacyBase, mm.taskSize);
}

/**
 * Models `__thp_get_unmapped_area()` in mm/huge_memory.c for anonymous memory (offset 0): asks for
 * len + 2 MiB and places the mapping on a 2 MiB boundary inside it (the top one, allocating top-down).
 * Returns -1 when the padded request does not fit.
 */
function thpGetUnmappedArea(mm: MmStruct, len: number): number {
  const ret = archGetUnmappedAreaTopdown(mm, 0, len + PMD_SIZE);
  if (ret === -1) return -1;
  const offSub = (PMD_SIZE - (ret % PMD_SIZE)) % PMD_SIZE;
  return offSub === 0 ? ret + PMD_SIZE : ret + offSub;
}

/** What kind of mapping the address is for (it changes which allocator Linux uses). */
export type UnmappedAreaKind = {
  /** A file mapping (file->f_op->get_unmapped_area, no THP alignment here). */
  readonly file?: boolean;
};

/**
 * Models `__get_unmapped_area()` (mm/mmap.c) with x86-64's `arch_get_unmapped_area_topdown()` and its
 * bottom-up fallback: MAP_FIXED returns `addr` after the range checks; a hint is used when the range is
 * free (rounded down to a page); otherwise the highest gap below mmap_base. Private anonymous requests
 * without a hint whose length is a multiple of 2 MiB are aligned to 2 MiB as Linux 6.18 does with
 * CONFIG_TRANSPARENT_HUGEPAGE. Finally security_mmap_addr() refuses addresses below mmap_min_addr with
 * EPERM unless the mm has CAP_SYS_RAWIO. Returns an address or an errno.
 */
export function getUnmappedArea(
  mm: MmStruct,
  addr: number,
  len: number,
  flags: number,
  kind: UnmappedAreaKind = {},
): { addr: number } | { errno: ErrnoValue } {
  if (len > mm.taskSize) return { errno: Errno.ENOMEM };
  let result: number;
  if (flags & MAP_FIXED) {
    result = addr;
  } else {
    result = -1;
    if (!kind.file && !(flags & MAP_SHARED) && !addr && len % PMD_SIZE === 0)
      result = thpGetUnmappedArea(mm, len);
    if (result === -1) result = archGetUnmappedAreaTopdown(mm, addr, len);
    if (result === -1) return { errno: Errno.ENOMEM };
  }
  if (result > mm.taskSize - len) return { errno: Errno.ENOMEM };
  if (result % PAGE_SIZE !== 0) return { errno: Errno.EINVAL };
  if (result < mm.mmapMinAddr && !mm.capSysRawio) return { errno: Errno.EPERM };
  return { addr: result };
}
