import type { CompactTrace } from '@spf/machine';
import type { ScheduleDebug } from './schedule-debug.js';

/** Details a failing test reports to the student. */
export type FailureDetails = {
  readonly expected?: string;
  readonly actual?: string;
  /** For concurrency tests: the schedule that fails (replayable with `replaySchedule`). */
  readonly schedule?: string;
  /** For concurrency tests: the failing run's trace, for a per-CPU timeline. */
  readonly trace?: CompactTrace;
  /** For concurrency tests: the schedule debugger's steps (CPUs' lines, cell values, lock holders). */
  readonly debug?: ScheduleDebug;
  /** 1-based line in the student's file where an exception was thrown, when known. */
  readonly line?: number;
  /** The student file that line refers to. */
  readonly file?: string;
  /** Extra lines that help explain the failure (for example how the reference walk went). */
  readonly notes?: readonly string[];
};

/** A test's check failed: the student's code gave a wrong answer. */
export class TestFailure extends Error {
  override name = 'TestFailure';
  constructor(
    message: string,
    readonly details: FailureDetails = {},
  ) {
    super(message);
  }
}

/** The student's code does not parse. */
export class StudentSyntaxError extends Error {
  override name = 'StudentSyntaxError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    reason: string,
  ) {
    super(`${file}:${line}:${column}: syntax error: ${reason}. Fix the code at that position and run again.`);
  }
}

/** The student's code parsed but could not be loaded (a bad import, or an exception at the top level). */
export class StudentLoadError extends Error {
  override name = 'StudentLoadError';
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

/** A lab definition is inconsistent (unknown parent, a buggy-variant patch that does not apply...). */
export class LabDefinitionError extends Error {
  override name = 'LabDefinitionError';
}

/** No lab with the requested id. */
export class UnknownLabError extends Error {
  override name = 'UnknownLabError';
}
