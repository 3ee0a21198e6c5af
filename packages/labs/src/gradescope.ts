import { formatResult } from './format-report.js';
import type { GradeReport } from './result.js';

/** One test in Gradescope's results.json. */
export type GradescopeTest = {
  readonly name: string;
  readonly number: string;
  readonly score: number;
  readonly max_score: number;
  readonly status: 'passed' | 'failed';
  readonly output: string;
  readonly output_format: 'text';
  readonly visibility: 'visible';
};

/** The results.json a Gradescope autograder writes to /autograder/results/results.json. */
export type GradescopeResults = {
  readonly score: number;
  readonly output: string;
  readonly output_format: 'text';
  readonly visibility: 'visible';
  readonly tests: readonly GradescopeTest[];
};

/**
 * A grade report in the format of Gradescope's autograder (results.json: an overall score and one entry
 * per test with its score, maximum, pass/fail status and output), so that an instructor's
 * run_autograder can call `spf-grade <lab> <files> --format gradescope > results/results.json`.
 */
export function gradescopeResults(report: GradeReport): GradescopeResults {
  return {
    score: report.score,
    output: report.error
      ? `${report.status}: ${report.error.message}`
      : `${report.lab} v${report.version}: ${report.score}/${report.maxScore}`,
    output_format: 'text',
    visibility: 'visible',
    tests: report.results.map((r, i) => ({
      name: `${r.id}: ${r.title}`,
      number: String(i + 1),
      score: r.points,
      max_score: r.maxPoints,
      status: r.status === 'pass' ? 'passed' : 'failed',
      output: formatResult(r),
      output_format: 'text',
      visibility: 'visible',
    })),
  };
}
