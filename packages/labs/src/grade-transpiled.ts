import { StudentLoadError, type StudentSyntaxError } from './lab-errors.js';
import type { Lab } from './lab.js';
import { type GradeReport, skippedResult, totalPoints } from './result.js';
import { type RunnerHooks, runTests } from './runner.js';
import { loadStudentModules } from './student-module.js';
import { maxScore } from './timeout-report.js';

// The half of grading after transpiling, without the transpiler: what the sandboxed Node child loads
// (its file-system permission covers only the packages it needs).

/** A report for a run that did not get to the tests (syntax or load error). */
export function failedReport(
  lab: Lab,
  status: GradeReport['status'],
  err: StudentSyntaxError | StudentLoadError,
) {
  const results = lab.tests.map((t) => skippedResult(t, `not run: ${err.message}`));
  return {
    lab: lab.id,
    version: lab.version,
    status,
    score: 0,
    maxScore: maxScore(lab),
    results,
    error: { message: err.message, file: err.file, line: err.line },
  } satisfies GradeReport;
}

/** Loads transpiled student files and runs every test: the half of {@link gradeSources} after transpiling. */
export async function gradeTranspiled(
  lab: Lab,
  js: ReadonlyMap<string, string>,
  hooks: RunnerHooks = {},
): Promise<GradeReport> {
  let student: Awaited<ReturnType<typeof loadStudentModules>>;
  try {
    student = await loadStudentModules(js, lab.modules());
  } catch (err) {
    if (err instanceof StudentLoadError) return failedReport(lab, 'load-error', err);
    throw err;
  }
  const results = await runTests(lab, student, hooks);
  return {
    lab: lab.id,
    version: lab.version,
    status: 'complete',
    score: totalPoints(results),
    maxScore: maxScore(lab),
    results,
    error: null,
  };
}
