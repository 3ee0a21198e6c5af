import { call, type Kernel, KernelFault } from '@spf/machine';
import { formatErrorCode, PF_INSTR, PF_PK, PF_P, PF_RSVD, PF_USER, PF_WRITE } from '@spf/pagetable';
import {
  expandDownwards,
  type MmStruct,
  VM_ACCESS_FLAGS,
  VM_GROWSDOWN,
  VM_WRITE,
  type VmArea,
} from '@spf/vma';
import type { FaultEnv } from './fault-env.js';
import {
  FAULT_FLAG_DEFAULT,
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_COMPLETED,
  VM_FAULT_ERROR,
  VM_FAULT_HWPOISON,
  VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags.js';
import type { FaultOutcome, UserFault } from './fault-handler.js';
import { handleMmFault } from './handle-mm-fault.js';

/** A #PF with the RSVD bit: a corrupt page table (`pgtable_bad()` in arch/x86/mm/fault.c oopses). */
export class PageTableCorruptionError extends KernelFault {
  override name = 'PageTableCorruptionError';
  constructor(message: string) {
    super('pgtable-bad', message);
  }
}

/**
 * Models `access_error()` in arch/x86/mm/fault.c: does the VMA forbid this access outright? A protection
 * key violation always does; a write needs VM_WRITE; a read of a present page can only have faulted for a
 * protection reason, so it is an error; a read of a non-present page needs the VMA to be accessible at all
 * (any of read, write, exec: x86 cannot map a page write-only or exec-only). An instruction fetch is
 * treated like a read (`arch_vma_access_permitted()` only matters with protection keys).
 */
export function accessError(errorCode: number, vma: VmArea): boolean {
  if ((errorCode & PF_PK) !== 0) return true;
  if ((errorCode & PF_WRITE) !== 0) return (vma.vmFlags & VM_WRITE) === 0;
  if ((errorCode & PF_P) !== 0) return true;
  return (vma.vmFlags & VM_ACCESS_FLAGS) === 0;
}

/**
 * Models `do_user_addr_fault()` in arch/x86/mm/fault.c (Linux 5.7 to 6.4) for a fault from user mode:
 *
 * 1. error code to fault flags: FAULT_FLAG_DEFAULT (ALLOW_RETRY, KILLABLE, INTERRUPTIBLE) plus USER,
 *    WRITE and INSTRUCTION;
 * 2. `mmap_read_trylock()`, falling back to `mmap_read_lock()` (user faults may always sleep);
 * 3. `find_vma()`; below a VM_GROWSDOWN VMA, `expand_stack()`; no VMA, or one above a gap that is not a
 *    stack: SIGSEGV with SEGV_MAPERR (`bad_area()`);
 * 4. `access_error()`: SIGSEGV with SEGV_ACCERR (`bad_area_access_error()`; SEGV_PKUERR for keys);
 * 5. `handle_mm_fault()`; on VM_FAULT_RETRY the handler has released the mmap lock: if a signal is
 *    pending for the task (`fault_signal_pending()`: the KILLABLE/INTERRUPTIBLE part of the protocol),
 *    give up and return to user mode; otherwise set FAULT_FLAG_TRIED, take the lock again (no trylock)
 *    and start over from `find_vma()`;
 * 6. VM_FAULT_OOM: `pagefault_out_of_memory()`; VM_FAULT_SIGBUS / HWPOISON: SIGBUS (`do_sigbus()`);
 *    VM_FAULT_SIGSEGV: SIGSEGV MAPERR (`bad_area_nosemaphore()`).
 *
 * Between steps 1 and 2 a {@link LocklessFaultAttempt} may run: the hook where the speculative designs of
 * @spf/fault-spec try the fault without mmap_lock (`handle_speculative_fault()` of the SPF series,
 * `lock_vma_under_rcu()` of Linux 6.4), falling back to step 2 when they cannot finish it. The classic
 * handler passes none. Steps 2 to 6 are the environment's `userFaultPaths.retryLoop` when it has one (an
 * injection point, see `withUserFaultPaths()`), else {@link doUserAddrFaultRetry}.
 *
 * Simplifications: no kprobes/kmmio/SMAP checks (user-mode faults only).
 */
export function* doUserAddrFault(
  env: FaultEnv,
  fault: UserFault,
  lockless?: LocklessFaultAttempt,
): Kernel<FaultOutcome> {
  const { mm, address, errorCode } = fault;
  if ((errorCode & PF_RSVD) !== 0) {
    throw new PageTableCorruptionError(
      `#PF with RSVD at 0x${address.toString(16)} (${formatErrorCode(errorCode)}): a page-table entry has reserved bits set`,
    );
  }
  let flags = FAULT_FLAG_DEFAULT;
  if ((errorCode & PF_USER) !== 0) flags |= FAULT_FLAG_USER;
  if ((errorCode & PF_WRITE) !== 0) flags |= FAULT_FLAG_WRITE;
  if ((errorCode & PF_INSTR) !== 0) flags |= FAULT_FLAG_INSTRUCTION;
  // fault_in_kernel_space(): a user access to a kernel address never looks at the VMAs.
  if (address >= mm.taskSize) return { kind: 'sigsegv', code: 'MAPERR', address };

  if (lockless !== undefined) {
    const attempt = yield* call(lockless(fault, flags));
    if (attempt.kind === 'outcome') return attempt.outcome;
    if (attempt.kind === 'done') return mmFaultOutcome(attempt.ret, address);
    flags = attempt.flags;
  }

  return yield* call((env.userFaultPaths?.retryLoop ?? doUserAddrFaultRetry)(env, fault, flags));
}

/**
 * `find_vma()` and the stack expansion of the fault path, with mmap_lock held for reading: the VMA that
 * contains `address`, after growing a VM_GROWSDOWN VMA down to it (`expand_stack()`) if it lies in the gap
 * below one. Null (mmap_lock released) when there is none: SIGSEGV MAPERR for the caller.
 */
function* findVmaOrUnlock(env: FaultEnv, mm: MmStruct, address: number): Kernel<VmArea | null> {
  return vmaCovering(mm, address) ?? (yield* findVmaOrUnlockSlow(env, mm, address));
}

/** `find_vma()` when it returns a VMA that covers `address` (the common case, no effect), else null. */
function vmaCovering(mm: MmStruct, address: number): VmArea | null {
  const vma = mm.findVma(address);
  return vma !== null && vma.vmStart <= address ? vma : null;
}

/** {@link findVmaOrUnlock} when no VMA covers `address`: a stack to grow, or the unlock and null. */
function* findVmaOrUnlockSlow(env: FaultEnv, mm: MmStruct, address: number): Kernel<VmArea | null> {
  let vma = mm.findVma(address);
  if (vma === null) {
    yield* mm.mmapReadUnlock();
    return null;
  }
  if (vma.vmStart > address) {
    if ((vma.vmFlags & VM_GROWSDOWN) === 0 || (yield* expandDownwards(mm, vma, address)) !== 0) {
      yield* mm.mmapReadUnlock();
      return null;
    }
    env.vmstat.stackExpansions++;
    vma = mm.findVma(address) as VmArea;
  }
  return vma;
}

/**
 * Models `lock_mm_and_find_vma()` in mm/memory.c (Linux 6.5+): take mmap_lock for reading (trylock first,
 * then sleep for it: user faults may always sleep) and find the VMA containing `address`, expanding a
 * VM_GROWSDOWN stack down to it. Returns the VMA with mmap_lock held, or null with mmap_lock released (no
 * VMA there: SIGSEGV MAPERR, `bad_area_nosemaphore()`). Simplification: the stack is expanded under the
 * read lock (@spf/vma's `expandDownwards`), where 6.5 upgrades to the write lock.
 */
export function* lockMmAndFindVma(env: FaultEnv, mm: MmStruct, address: number): Kernel<VmArea | null> {
  if (!(yield* mm.mmapReadTrylock())) yield* mm.mmapReadLock();
  return yield* findVmaOrUnlock(env, mm, address);
}

/**
 * Models `do_user_addr_fault()` in arch/x86/mm/fault.c from its `retry:` label on (steps 2 to 6 of
 * {@link doUserAddrFault}): take mmap_lock and find the VMA, check the access, `handle_mm_fault()`, and on
 * VM_FAULT_RETRY set FAULT_FLAG_TRIED, take the lock again (Linux 5.7 to 6.4: `mmap_read_lock()`, no
 * trylock) and look the VMA up again: while the lock was dropped, munmap or mremap may have removed or
 * moved it. Returns with mmap_lock released. This package's `UserFaultPaths.retryLoop`.
 */
export function* doUserAddrFaultRetry(env: FaultEnv, fault: UserFault, flags: number): Kernel<FaultOutcome> {
  const { mm, address, errorCode } = fault;
  if (!(yield* mm.mmapReadTrylock())) yield* mm.mmapReadLock();
  for (;;) {
    // findVmaOrUnlock() without its generator frame when a VMA covers the address.
    const vma = vmaCovering(mm, address) ?? (yield* findVmaOrUnlockSlow(env, mm, address));
    if (vma === null) return { kind: 'sigsegv', code: 'MAPERR', address };
    if (accessError(errorCode, vma)) {
      yield* mm.mmapReadUnlock();
      return { kind: 'sigsegv', code: (errorCode & PF_PK) !== 0 ? 'PKUERR' : 'ACCERR', address };
    }
    const ret = yield* call(handleMmFault(env, mm, vma, address, flags, fault.task));
    // fault_signal_pending(): the handler already dropped the lock; leave the signal to user mode.
    if ((ret & VM_FAULT_RETRY) !== 0 && fault.signalPending?.() === true) return { kind: 'signal-pending' };
    if ((ret & VM_FAULT_COMPLETED) !== 0) return { kind: 'handled' };
    if ((ret & VM_FAULT_RETRY) !== 0) {
      env.vmstat.retries++;
      flags |= FAULT_FLAG_TRIED;
      yield* mm.mmapReadLock();
      continue;
    }
    yield* mm.mmapReadUnlock();
    return mmFaultOutcome(ret, address);
  }
}

/**
 * What a finished fault (one whose `handle_mm_fault()` result has no VM_FAULT_RETRY) means for the task:
 * the tail of `do_user_addr_fault()` with `mm_fault_error()` in arch/x86/mm/fault.c. No error bit: handled.
 * VM_FAULT_OOM: `pagefault_out_of_memory()`; SIGBUS or HWPOISON: `do_sigbus()`; SIGSEGV: `bad_area_nosemaphore()`
 * with SEGV_MAPERR.
 */
export function mmFaultOutcome(ret: number, address: number): FaultOutcome {
  if ((ret & VM_FAULT_ERROR) === 0) return { kind: 'handled' };
  if ((ret & VM_FAULT_OOM) !== 0) return { kind: 'oom', address };
  if ((ret & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) !== 0) {
    return { kind: 'sigbus', address };
  }
  if ((ret & VM_FAULT_SIGSEGV) !== 0) return { kind: 'sigsegv', code: 'MAPERR', address };
  throw new KernelFault('bug', `handle_mm_fault returned unexpected bits 0x${ret.toString(16)}`);
}

/**
 * What a {@link LocklessFaultAttempt} decided:
 * - `fallback`: it could not finish the fault; take mmap_lock and run the classic path with `flags` (the
 *   attempt's flags, e.g. with FAULT_FLAG_TRIED added after a major fault asked for a retry, as 6.4 does);
 * - `done`: it finished the fault without mmap_lock; `ret` is the `handle_mm_fault()` result (no
 *   VM_FAULT_RETRY), mapped to the task's outcome by {@link mmFaultOutcome};
 * - `outcome`: it decided the outcome itself (6.4 sends SIGSEGV ACCERR from under the VMA lock through
 *   `bad_area_access_error()`; a pending signal after a retry).
 */
export type LocklessFaultResult =
  | { readonly kind: 'fallback'; readonly flags: number }
  | { readonly kind: 'done'; readonly ret: number }
  | { readonly kind: 'outcome'; readonly outcome: FaultOutcome };

/**
 * A fault attempt made before `do_user_addr_fault()` takes mmap_lock: Dufour's and Lespinasse's
 * `handle_speculative_fault()`, or 6.4's `lock_vma_under_rcu()` block. It receives the user fault and the
 * FAULT_FLAG_* bits computed from the error code, and runs in the faulting task's context. It must leave
 * no lock held whatever it returns, and it accounts the faults it finishes itself (`mmAccountFault`).
 */
export type LocklessFaultAttempt = (fault: UserFault, flags: number) => Kernel<LocklessFaultResult>;
