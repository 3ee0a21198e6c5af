/** The signals a page fault can raise. */
export type SignalName = 'SIGSEGV' | 'SIGBUS';

/**
 * si_code of a fault signal (include/uapi/asm-generic/siginfo.h): SEGV_MAPERR (no mapping), SEGV_ACCERR
 * (the mapping forbids the access), SEGV_PKUERR (protection key), SI_KERNEL (a #GP, e.g. a non-canonical
 * address), BUS_ADRERR (SIGBUS: no page behind a valid mapping), or `OOM` for a task killed because memory
 * ran out (Linux's OOM killer sends SIGKILL; we report it through the same channel).
 */
export type SignalCode = 'MAPERR' | 'ACCERR' | 'PKUERR' | 'SI_KERNEL' | 'ADRERR' | 'OOM';

/** What a signal reports (`siginfo_t`: si_signo, si_code, si_addr). */
export interface SignalInfo {
  readonly signal: SignalName | 'SIGKILL';
  readonly code: SignalCode;
  /** si_addr: the faulting address. */
  readonly address: number;
}

/**
 * A signal delivered to a user program that installed a handler for it (`UserContext.catchSignal`): the
 * faulting access throws this, as a handler that `siglongjmp`s out would resume the program elsewhere. The
 * program catches it with try/catch. Rethrowing it (or not installing a handler) kills the process.
 */
export class UserSignal extends Error {
  override readonly name = 'UserSignal';
  constructor(readonly info: SignalInfo) {
    super(`${info.signal} (${info.code}) at 0x${info.address.toString(16)}`);
  }
}

/**
 * Thrown through a user program to end it because its process is dying (an unhandled signal or another
 * thread's exit). Programs must not catch it; if one does, the kernel ends the thread anyway at its next
 * access or syscall.
 */
export class ProcessExiting extends Error {
  override readonly name = 'ProcessExiting';
  constructor(readonly reason: string) {
    super(reason);
  }
}
