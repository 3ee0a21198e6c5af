import type { Kernel } from '@spf/machine';
import type { TaskFaultCounters } from './fault-counters.js';
import type { FaultEnv } from './fault-env.js';
import type { FaultHandlerFactory, FaultOutcome, UserFault } from './fault-handler.js';

/**
 * The retry half of the x86 fault entry and the fault accounting: an injection point. A system built with
 * {@link withUserFaultPaths} runs these instead of this package's (Lab 6 of the course plugs the student's
 * versions in here):
 *
 * - `retryLoop` is `do_user_addr_fault()` (arch/x86/mm/fault.c) from its `retry:` label on: it is called
 *   with the FAULT_FLAG_* bits computed from the error code, after any lockless attempt fell back, and
 *   without mmap_lock. It takes the lock and finds the VMA (`lock_mm_and_find_vma()`), checks the access,
 *   calls `handle_mm_fault()`, and on VM_FAULT_RETRY (the handler dropped the lock) gives up if a signal is
 *   pending, else sets FAULT_FLAG_TRIED and starts again from `retry:`. It returns with no lock held.
 * - `mmAccountFault` is `mm_account_fault()` (mm/memory.c), which `handle_mm_fault()` calls with each
 *   attempt's result.
 */
export interface UserFaultPaths {
  retryLoop(env: FaultEnv, fault: UserFault, flags: number): Kernel<FaultOutcome>;
  mmAccountFault(env: FaultEnv, task: TaskFaultCounters | null, flags: number, ret: number): void;
}

/**
 * A fault-handler factory whose handler runs `paths` for the retry loop of `do_user_addr_fault()` and for
 * `mm_account_fault()`: `factory` (the classic handler, or a design that falls back to it) gets the system's
 * environment with `userFaultPaths` set. Everything else stays the package's. Pass the result as
 * `boot({ faultHandler })` of @spf/kernel.
 */
export function withUserFaultPaths(factory: FaultHandlerFactory, paths: UserFaultPaths): FaultHandlerFactory {
  return (env: FaultEnv) => factory({ ...env, userFaultPaths: paths });
}
