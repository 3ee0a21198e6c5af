/**
 * Typed errors of the machine. Configuration mistakes are {@link MachineConfigError}s thrown before a run
 * starts; problems found while kernel code runs are {@link KernelFault}s, which stop the run and become a
 * {@link FailureReport} rather than escaping to the caller.
 */

/** A machine, policy or exploration was configured with a value it cannot use. */
export class MachineConfigError extends Error {
  override readonly name = 'MachineConfigError';
}

/** A replay schedule could not be parsed. */
export class ScheduleFormatError extends Error {
  override readonly name = 'ScheduleFormatError';
}

/** A replayed schedule asked for a step that the program cannot take (it diverged from the recording). */
export class ScheduleDivergenceError extends Error {
  override readonly name = 'ScheduleDivergenceError';
}

/**
 * Base class of every fault that kernel code (or a memory layer underneath it) raises while running on the
 * machine. Throwing one from a task stops the run; the report's `kind` is taken from the fault.
 *
 * Other packages extend it: a KASAN-like use-after-free report, a lockdep splat, a refcount warning.
 */
export class KernelFault extends Error {
  override name = 'KernelFault';
  constructor(
    /** Short machine-readable kind, such as `assertion` or `use-after-free`. */
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** A `BUG_ON`/`WARN_ON`-style assertion in simulated kernel code failed. */
export class KernelAssertionError extends KernelFault {
  override name = 'KernelAssertionError';
  constructor(message: string) {
    super('assertion', message);
  }
}

/** A memory layer detected an access to freed memory (a stale pointer or page-table entry). */
export class UseAfterFreeError extends KernelFault {
  override name = 'UseAfterFreeError';
  constructor(message: string) {
    super('use-after-free', message);
  }
}

/**
 * Checks a condition inside simulated kernel code (the kernel's `BUG_ON` turned around: it fails when
 * `cond` is false). A failure stops the run with an `assertion` report and a replayable schedule.
 */
export function kassert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new KernelAssertionError(typeof message === 'function' ? message() : message);
}
