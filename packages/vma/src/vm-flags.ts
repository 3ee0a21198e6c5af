import { PAGE_SHIFT, PAGE_SIZE } from '@spf/pagetable';
/**
 * vm_flags bits with the values of include/linux/mm.h (x86-64, CONFIG_MEM_SOFT_DIRTY, 64-bit), and the
 * uapi constants of the mapping syscalls (include/uapi/asm-generic/mman-common.h, mman.h, linux/mman.h).
 *
 * Simplification: flags at bit 31 and above (VM_MERGEABLE for KSM, the pkey bits, VM_SEALED...) are not
 * modelled, so every flag fits a signed 32-bit JavaScript bitwise operation.
 */
export const VM_NONE = 0x0;
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_UFFD_MISSING = 0x200;
export const VM_PFNMAP = 0x400;
export const VM_UFFD_WP = 0x1000;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_LOCKONFAULT = 0x80000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_SYNC = 0x800000;
export const VM_ARCH_1 = 0x1000000;
export const VM_WIPEONFORK = 0x2000000;
export const VM_DONTDUMP = 0x4000000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;

/** VM_READ | VM_WRITE | VM_EXEC. */
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
/** Mappings that the generic mm code must not merge, split-copy or treat as normal memory. */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
/** Flags ignored when deciding whether two VMAs may merge (VM_IGNORE_MERGE in mm/vma.h). */
export const VM_IGNORE_MERGE = VM_SOFTDIRTY;
/** Flags that select a guard gap below a VMA (VM_STARTGAP_FLAGS; VM_GROWSUP does not exist on x86). */
export const VM_STARTGAP_FLAGS = VM_GROWSDOWN;
/** The default flags of the data segment and brk (VM_DATA_DEFAULT_FLAGS on x86-64 without READ_IMPLIES_EXEC). */
export const VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
/** Flags of the initial stack (VM_STACK_DEFAULT_FLAGS | VM_GROWSDOWN | VM_ACCOUNT in setup_arg_pages). */
export const VM_STACK_FLAGS = VM_DATA_DEFAULT_FLAGS | VM_GROWSDOWN | VM_ACCOUNT;

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_SEM = 0x8;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_DENYWRITE = 0x0800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_SYNC = 0x80000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_UNINITIALIZED = 0x4000000;
/** Flags MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK | MAP_SYNC ... in include/linux/mman.h). */
export const LEGACY_MAP_MASK =
  MAP_SHARED |
  MAP_PRIVATE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_DENYWRITE |
  MAP_EXECUTABLE |
  MAP_UNINITIALIZED |
  MAP_GROWSDOWN |
  MAP_LOCKED |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_NONBLOCK |
  MAP_STACK |
  MAP_HUGETLB;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;

/** x86-64 page size (defined once, in @spf/pagetable) and helpers. */
export { PAGE_SHIFT, PAGE_SIZE };
/** True if `addr` is a multiple of the page size. */
export function pageAligned(addr: number): boolean {
  return addr % PAGE_SIZE === 0;
}
/** PAGE_ALIGN(): rounds up to a page boundary. */
export function pageAlign(len: number): number {
  return Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
}

/** calc_vm_prot_bits() (include/linux/mman.h): PROT_* to VM_* (identical bit values for r/w/x). */
export function calcVmProtBits(prot: number): number {
  return prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}

/**
 * calc_vm_flag_bits() (include/linux/mman.h): MAP_GROWSDOWN, MAP_LOCKED and MAP_SYNC give their VM_* flag, and
 * MAP_STACK gives VM_NOHUGEPAGE, as Linux does since 6.7 when built with CONFIG_TRANSPARENT_HUGEPAGE (the
 * configuration the rest of this package models: madvise(MADV_HUGEPAGE), the THP alignment of mmap).
 */
export function calcVmFlagBits(flags: number): number {
  let f = 0;
  if (flags & MAP_GROWSDOWN) f |= VM_GROWSDOWN;
  if (flags & MAP_LOCKED) f |= VM_LOCKED;
  if (flags & MAP_SYNC) f |= VM_SYNC;
  if (flags & MAP_STACK) f |= VM_NOHUGEPAGE;
  return f;
}

const flagNames: readonly [number, string][] = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_EXEC, 'ex'],
  [VM_SHARED, 'sh'],
  [VM_MAYREAD, 'mr'],
  [VM_MAYWRITE, 'mw'],
  [VM_MAYEXEC, 'me'],
  [VM_MAYSHARE, 'ms'],
  [VM_GROWSDOWN, 'gd'],
  [VM_UFFD_MISSING, 'um'],
  [VM_PFNMAP, 'pf'],
  [VM_UFFD_WP, 'uw'],
  [VM_LOCKED, 'lo'],
  [VM_IO, 'io'],
  [VM_SEQ_READ, 'sr'],
  [VM_RAND_READ, 'rr'],
  [VM_DONTCOPY, 'dc'],
  [VM_DONTEXPAND, 'de'],
  [VM_LOCKONFAULT, 'lf'],
  [VM_ACCOUNT, 'ac'],
  [VM_NORESERVE, 'nr'],
  [VM_HUGETLB, 'ht'],
  [VM_SYNC, 'sf'],
  [VM_ARCH_1, 'ar'],
  [VM_WIPEONFORK, 'wf'],
  [VM_DONTDUMP, 'dd'],
  [VM_SOFTDIRTY, 'sd'],
  [VM_MIXEDMAP, 'mm'],
  [VM_HUGEPAGE, 'hg'],
  [VM_NOHUGEPAGE, 'nh'],
];

/**
 * Models `show_smap_vma_flags()` (fs/proc/task_mmu.c): the two-letter mnemonics of the /proc/PID/smaps
 * `VmFlags:` line, lowest bit first, for every flag this model has (x86-64 with CONFIG_MEM_SOFT_DIRTY;
 * VM_ARCH_1 is x86's VM_PAT, printed `ar`). Linux ends each mnemonic with a space; here they are joined by one.
 */
export function vmFlagsString(flags: number): string {
  return flagNames
    .filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join(' ');
}
