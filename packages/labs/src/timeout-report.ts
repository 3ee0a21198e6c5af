import type { LabOutline } from './lab.js';
import { type GradeReport, skippedResult, type TestResult, totalPoints } from './result.js';

/** The maximum score of a lab. */
export function maxScore(lab: Pick<LabOutline, 'tests'>): number {
  return lab.tests.reduce((s, t) => s + t.points, 0);
}

/**
 * The report of a run stopped by a watchdog: tests finished so far keep their results, the running test
 * is `timeout`, the rest are skipped.
 */
export function timeoutReport(
  lab: LabOutline,
  finished: readonly TestResult[],
  runningTest: string | null,
  limitMs: number,
): GradeReport {
  const done = new Map(finished.map((r) => [r.id, r]));
  const results = lab.tests.map((t) => {
    const r = done.get(t.id);
    if (r) return r;
    if (t.id === runningTest) {
      return skippedResult(
        t,
        `timeout: still running after ${limitMs} ms (an infinite loop?); the run was stopped`,
        'timeout',
      );
    }
    return skippedResult(t, 'not run: the run was stopped after a timeout');
  });
  return {
    lab: lab.id,
    version: lab.version,
    status: 'timeout',
    score: totalPoints(results),
    maxScore: maxScore(lab),
    results,
    error:
      runningTest === null
        ? {
            message: `loading your code did not finish within ${limitMs} ms (an infinite loop at top level?)`,
          }
        : null,
  };
}

/**
 * The report of a run whose worker crashed or ended before reporting (out of memory, a crash): tests
 * finished so far keep their results, the running test is an `error` carrying the reason, the rest are
 * skipped saying why. Nothing about it suggests a timeout.
 */
export function stoppedReport(
  lab: LabOutline,
  finished: readonly TestResult[],
  runningTest: string | null,
  reason: string,
): GradeReport {
  const done = new Map(finished.map((r) => [r.id, r]));
  const results = lab.tests.map((t): TestResult => {
    const r = done.get(t.id);
    if (r) return r;
    if (t.id === runningTest) return { ...skippedResult(t, reason), status: 'error' };
    return skippedResult(t, `not run: the grading run stopped (${reason})`);
  });
  return {
    lab: lab.id,
    version: lab.version,
    status: 'load-error',
    score: totalPoints(results),
    maxScore: maxScore(lab),
    results,
    error: { message: reason },
  };
}
