import {
  accessError,
  FAULT_FLAG_TRIED,
  type FaultEnv,
  type FaultOutcome,
  handleMmFault,
  lockMmAndFindVma,
  mmFaultOutcome,
  type TaskFaultCounters,
  type UserFault,
  VM_FAULT_COMPLETED,
  VM_FAULT_ERROR,
  VM_FAULT_MAJOR,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { PF_PK } from '@spf/pagetable';

// Lab 6, part 2: do_user_addr_fault()'s retry loop (arch/x86/mm/fault.c) and mm_account_fault()
// (mm/memory.c).

/** do_user_addr_fault() from its retry: label on. Returns with mmap_lock released. */
export function* doUserAddrFaultRetry(env: FaultEnv, fault: UserFault, flags: number): Kernel<FaultOutcome> {
  const { mm, address, errorCode } = fault;
  for (;;) {
    // retry: the VMA is looked up again each time: munmap or mmap may have replaced it meanwhile.
    const vma = yield* lockMmAndFindVma(env, mm, address);
    if (vma === null) return { kind: 'sigsegv', code: 'MAPERR', address };
    if (accessError(errorCode, vma)) {
      yield* mm.mmapReadUnlock();
      return { kind: 'sigsegv', code: (errorCode & PF_PK) !== 0 ? 'PKUERR' : 'ACCERR', address };
    }
    const ret = yield* handleMmFault(env, mm, vma, address, flags, fault.task);
    // fault_signal_pending(): the lock is already gone; let user mode take the signal.
    if ((ret & VM_FAULT_RETRY) !== 0 && fault.signalPending?.() === true) return { kind: 'signal-pending' };
    if ((ret & VM_FAULT_COMPLETED) !== 0) return { kind: 'handled' };
    if ((ret & VM_FAULT_RETRY) !== 0) {
      env.vmstat.retries++;
      flags |= FAULT_FLAG_TRIED; // the retried fault must finish: it may not drop the lock again
      continue;
    }
    yield* mm.mmapReadUnlock();
    return mmFaultOutcome(ret, address);
  }
}

/** mm_account_fault(): count a finished attempt, once, as major or minor. */
export function mmAccountFault(
  env: FaultEnv,
  task: TaskFaultCounters | null,
  flags: number,
  ret: number,
): void {
  if ((ret & VM_FAULT_RETRY) !== 0) return; // counted when the retried fault completes
  env.vmstat.pgfault++;
  if ((ret & VM_FAULT_ERROR) !== 0) return;
  const major = (ret & VM_FAULT_MAJOR) !== 0 || (flags & FAULT_FLAG_TRIED) !== 0;
  if (major) {
    env.vmstat.pgmajfault++;
    if (task !== null) task.majflt++;
  } else if (task !== null) {
    task.minflt++;
  }
}
