import type { FailureDetails } from './lab-errors.js';
import type { TestCategory, TestOutline } from './lab.js';

/** Outcome of one test. `error` means the student's code threw; `fail` means it gave a wrong answer. */
export type TestStatus = 'pass' | 'fail' | 'skipped' | 'timeout' | 'error';

/** One test's result, in the stable JSON shape shared by the CLI, the browser worker and saved progress. */
export type TestResult = {
  readonly id: string;
  readonly title: string;
  readonly category: TestCategory;
  readonly parent: string | null;
  readonly status: TestStatus;
  /** Points earned (0 unless `pass`). */
  readonly points: number;
  readonly maxPoints: number;
  /** Empty when passed; otherwise what went wrong and what to look at. */
  readonly message: string;
  /** What the student's code printed with `console.*` during the test. */
  readonly output: string;
  readonly details: FailureDetails;
  /** Wall-clock duration (host time, not simulated time). */
  readonly durationMs: number;
};

/** How a grading run ended. */
export type GradeStatus = 'complete' | 'syntax-error' | 'load-error' | 'timeout';

/** A whole grading run. */
export type GradeReport = {
  readonly lab: string;
  readonly version: number;
  readonly status: GradeStatus;
  readonly score: number;
  readonly maxScore: number;
  readonly results: readonly TestResult[];
  /** Set when the code could not be transpiled or loaded. */
  readonly error: { readonly message: string; readonly file?: string; readonly line?: number } | null;
  /** The earlier labs' solutions handed to this grading ({@link EarlierUse}); absent when none was. */
  readonly earlier?: readonly EarlierUse[];
};

/**
 * What became of an earlier lab's solution handed to a grading: its score on its own lab's tests (run as
 * this report's `regression` results, `<lab>/<test id>`) and whether this lab ran on it (only with full
 * marks; otherwise on the package's code).
 */
export type EarlierUse = {
  readonly lab: string;
  readonly score: number;
  readonly maxScore: number;
  readonly used: boolean;
  /** Set when the earlier solution could not be transpiled or loaded. */
  readonly error?: string;
};

/** Sum of points of results. */
export function totalPoints(results: readonly TestResult[]): number {
  return results.reduce((s, r) => s + r.points, 0);
}

/** A result for a test that did not run. */
export function skippedResult(
  t: TestOutline,
  message: string,
  status: 'skipped' | 'timeout' = 'skipped',
): TestResult {
  return {
    id: t.id,
    title: t.title,
    category: t.category,
    parent: t.parent ?? null,
    status,
    points: 0,
    maxPoints: t.points,
    message,
    output: '',
    details: {},
    durationMs: 0,
  };
}
