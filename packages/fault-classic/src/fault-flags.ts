/**
 * The flags a fault carries through the handler and the result bits it returns, with the values of
 * `enum fault_flag` and `enum vm_fault_reason` in include/linux/mm_types.h (Linux 6.x).
 */

/** The fault is a write access (`FAULT_FLAG_WRITE`). */
export const FAULT_FLAG_WRITE = 1 << 0;
/** The fault is an mkwrite of an existing PTE (`FAULT_FLAG_MKWRITE`). */
export const FAULT_FLAG_MKWRITE = 1 << 1;
/** The handler may drop mmap_lock and return VM_FAULT_RETRY (`FAULT_FLAG_ALLOW_RETRY`). */
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
/** Do not wait when retrying (`FAULT_FLAG_RETRY_NOWAIT`). */
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
/** The fault may be interrupted by a fatal signal (`FAULT_FLAG_KILLABLE`). */
export const FAULT_FLAG_KILLABLE = 1 << 4;
/** This is a retry of a fault that returned VM_FAULT_RETRY (`FAULT_FLAG_TRIED`). */
export const FAULT_FLAG_TRIED = 1 << 5;
/** The fault came from user mode (`FAULT_FLAG_USER`). */
export const FAULT_FLAG_USER = 1 << 6;
/** The fault is on another process's mm (`FAULT_FLAG_REMOTE`, GUP). */
export const FAULT_FLAG_REMOTE = 1 << 7;
/** The fault is an instruction fetch (`FAULT_FLAG_INSTRUCTION`). */
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
/** The fault may be interrupted by any signal (`FAULT_FLAG_INTERRUPTIBLE`). */
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
/** Unshare a COW page without writing (`FAULT_FLAG_UNSHARE`). */
export const FAULT_FLAG_UNSHARE = 1 << 10;
/** `vmf->orig_pte` holds a value read from the page table (`FAULT_FLAG_ORIG_PTE_VALID`). */
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
/** The fault holds a per-VMA lock instead of mmap_lock (`FAULT_FLAG_VMA_LOCK`). */
export const FAULT_FLAG_VMA_LOCK = 1 << 12;
/**
 * The fault runs speculatively, without mmap_lock and without a per-VMA lock (`FAULT_FLAG_SPECULATIVE` of the
 * SPF series: Dufour's v12 and Lespinasse's 2021-22 series). Such a fault never sleeps and never retries
 * itself: whatever it cannot finish it abandons with VM_FAULT_RETRY, and the classic path takes over.
 * Mainline never had this bit; its value here is one above FAULT_FLAG_VMA_LOCK.
 */
export const FAULT_FLAG_SPECULATIVE = 1 << 13;
/** `FAULT_FLAG_DEFAULT`: what every user fault starts with. */
export const FAULT_FLAG_DEFAULT = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE;

/** Out of memory (`VM_FAULT_OOM`). */
export const VM_FAULT_OOM = 0x000001;
/** Bad access: deliver SIGBUS (`VM_FAULT_SIGBUS`). */
export const VM_FAULT_SIGBUS = 0x000002;
/** The page had to be read from storage (`VM_FAULT_MAJOR`). */
export const VM_FAULT_MAJOR = 0x000004;
/** Hardware-poisoned page (`VM_FAULT_HWPOISON`). */
export const VM_FAULT_HWPOISON = 0x000010;
/** Hardware-poisoned large page (`VM_FAULT_HWPOISON_LARGE`). */
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
/** Bad access: deliver SIGSEGV (`VM_FAULT_SIGSEGV`). */
export const VM_FAULT_SIGSEGV = 0x000040;
/** The handler installed the PTE itself; no page is returned (`VM_FAULT_NOPAGE`). */
export const VM_FAULT_NOPAGE = 0x000100;
/** `->fault` returned the page locked (`VM_FAULT_LOCKED`). */
export const VM_FAULT_LOCKED = 0x000200;
/** mmap_lock was dropped: retry the fault (`VM_FAULT_RETRY`). */
export const VM_FAULT_RETRY = 0x000400;
/** A huge page fault fell back to small pages (`VM_FAULT_FALLBACK`). */
export const VM_FAULT_FALLBACK = 0x000800;
/** `->fault` did the COW itself (`VM_FAULT_DONE_COW`). */
export const VM_FAULT_DONE_COW = 0x001000;
/** The fault completed and released mmap_lock (`VM_FAULT_COMPLETED`). */
export const VM_FAULT_COMPLETED = 0x004000;
/** `VM_FAULT_ERROR`: any of the results that end the fault with an error. */
export const VM_FAULT_ERROR =
  VM_FAULT_OOM |
  VM_FAULT_SIGBUS |
  VM_FAULT_SIGSEGV |
  VM_FAULT_HWPOISON |
  VM_FAULT_HWPOISON_LARGE |
  VM_FAULT_FALLBACK;

const faultFlagNames: readonly [number, string][] = [
  [FAULT_FLAG_WRITE, 'WRITE'],
  [FAULT_FLAG_MKWRITE, 'MKWRITE'],
  [FAULT_FLAG_ALLOW_RETRY, 'ALLOW_RETRY'],
  [FAULT_FLAG_RETRY_NOWAIT, 'RETRY_NOWAIT'],
  [FAULT_FLAG_KILLABLE, 'KILLABLE'],
  [FAULT_FLAG_TRIED, 'TRIED'],
  [FAULT_FLAG_USER, 'USER'],
  [FAULT_FLAG_REMOTE, 'REMOTE'],
  [FAULT_FLAG_INSTRUCTION, 'INSTRUCTION'],
  [FAULT_FLAG_INTERRUPTIBLE, 'INTERRUPTIBLE'],
  [FAULT_FLAG_UNSHARE, 'UNSHARE'],
  [FAULT_FLAG_ORIG_PTE_VALID, 'ORIG_PTE_VALID'],
  [FAULT_FLAG_VMA_LOCK, 'VMA_LOCK'],
  [FAULT_FLAG_SPECULATIVE, 'SPECULATIVE'],
];

const vmFaultNames: readonly [number, string][] = [
  [VM_FAULT_OOM, 'OOM'],
  [VM_FAULT_SIGBUS, 'SIGBUS'],
  [VM_FAULT_MAJOR, 'MAJOR'],
  [VM_FAULT_HWPOISON, 'HWPOISON'],
  [VM_FAULT_HWPOISON_LARGE, 'HWPOISON_LARGE'],
  [VM_FAULT_SIGSEGV, 'SIGSEGV'],
  [VM_FAULT_NOPAGE, 'NOPAGE'],
  [VM_FAULT_LOCKED, 'LOCKED'],
  [VM_FAULT_RETRY, 'RETRY'],
  [VM_FAULT_FALLBACK, 'FALLBACK'],
  [VM_FAULT_DONE_COW, 'DONE_COW'],
  [VM_FAULT_COMPLETED, 'COMPLETED'],
];

function names(bits: number, table: readonly [number, string][]): string {
  const out = table.filter(([b]) => (bits & b) !== 0).map(([, n]) => n);
  return out.length === 0 ? '0' : out.join('|');
}

/** `FAULT_FLAG_*` bits as text, e.g. `WRITE|ALLOW_RETRY|KILLABLE|USER` (the kernel's fault-flag trace names). */
export function faultFlagsString(flags: number): string {
  return names(flags, faultFlagNames);
}

/** `VM_FAULT_*` bits as text, e.g. `RETRY` or `0` (the names of `VM_FAULT_RESULT_TRACE`). */
export function vmFaultString(result: number): string {
  return names(result, vmFaultNames);
}
