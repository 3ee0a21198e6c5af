import type { Kernel } from '@spf/machine';
import { doUserAddrFault } from './do-user-addr-fault.js';
import type { FaultEnv } from './fault-env.js';
import type { FaultHandler, FaultOutcome, UserFault } from './fault-handler.js';

/**
 * The classic Linux fault path: every fault takes mmap_lock for reading for its whole duration
 * ({@link doUserAddrFault}). The baseline the speculative designs are measured against, and their fallback.
 */
export class ClassicFaultHandler implements FaultHandler {
  readonly name = 'classic';
  constructor(readonly env: FaultEnv) {}

  handleUserFault(fault: UserFault): Kernel<FaultOutcome> {
    return doUserAddrFault(this.env, fault);
  }
}

/** The factory `boot({ faultHandler })` takes for the classic handler (its default). */
export function classicFaultHandler(env: FaultEnv): FaultHandler {
  return new ClassicFaultHandler(env);
}
