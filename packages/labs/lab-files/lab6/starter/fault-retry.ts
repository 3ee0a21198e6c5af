import type { FaultEnv, FaultOutcome, TaskFaultCounters, UserFault } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';

// Lab 6, part 2: do_user_addr_fault()'s retry loop (arch/x86/mm/fault.c) and mm_account_fault()
// (mm/memory.c). Every user page fault of the system comes through your loop.
//
// doUserAddrFaultRetry(env, fault, flags): do_user_addr_fault() from its retry: label. The flags
// (FAULT_FLAG_ALLOW_RETRY | KILLABLE | INTERRUPTIBLE | USER, plus WRITE/INSTRUCTION) are computed; you hold
// no lock. Loop:
//   1. const vma = yield* lockMmAndFindVma(env, fault.mm, fault.address): takes mmap_lock for reading and
//      finds the VMA (growing a stack). null: no VMA, the lock is released: SIGSEGV with MAPERR
//      ({ kind: 'sigsegv', code: 'MAPERR', address }).
//   2. accessError(fault.errorCode, vma): unlock (mm.mmapReadUnlock()) and SIGSEGV with ACCERR.
//   3. const ret = yield* handleMmFault(env, mm, vma, address, flags, fault.task).
//   4. VM_FAULT_RETRY in ret: the handler dropped mmap_lock. If fault.signalPending?.() say
//      { kind: 'signal-pending' }. Otherwise count it (env.vmstat.retries++), set FAULT_FLAG_TRIED in flags
//      and go back to 1: the VMA may be gone or another one now, so look it up again.
//   5. VM_FAULT_COMPLETED: { kind: 'handled' } (the lock is gone too).
//   6. Else unlock and return mmFaultOutcome(ret, address).
//
// mmAccountFault(env, task, flags, ret): handle_mm_fault() calls it after every attempt. An attempt that
// returned VM_FAULT_RETRY is counted when it completes, not now. Otherwise env.vmstat.pgfault++, and if ret
// has no VM_FAULT_ERROR bit, the task's majflt (and env.vmstat.pgmajfault) when the fault did I/O
// (VM_FAULT_MAJOR) or had been retried (FAULT_FLAG_TRIED), else its minflt. task may be null.

export function* doUserAddrFaultRetry(env: FaultEnv, fault: UserFault, flags: number): Kernel<FaultOutcome> {
  // TODO: every fault is a bus error for now.
  void env;
  void flags;
  return { kind: 'sigbus', address: fault.address };
}

export function mmAccountFault(
  env: FaultEnv,
  task: TaskFaultCounters | null,
  flags: number,
  ret: number,
): void {
  // TODO: count the fault.
  void env;
  void task;
  void flags;
  void ret;
}
