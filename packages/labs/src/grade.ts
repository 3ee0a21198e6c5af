import { LabDefinitionError, StudentLoadError, StudentSyntaxError } from './lab-errors.js';
import type { Lab } from './lab.js';
import { type GradeReport, skippedResult, totalPoints } from './result.js';
import { maxScore } from './timeout-report.js';
import { type RunnerHooks, parentProblems, runTests } from './runner.js';
import { loadStudentModules } from './student-module.js';
import type { Sources } from './worker-protocol.js';
import { transpileStudent } from './transpile.js';

export type { Sources } from './worker-protocol.js';

/** Throws {@link LabDefinitionError} if a lab's tests, files or buggy variants are inconsistent. */
export function validateLab(lab: Lab): void {
  const problems = parentProblems(lab);
  const ids = new Set(lab.tests.map((t) => t.id));
  const files = new Set(lab.files.map((f) => f.name));
  for (const v of lab.buggyVariants) {
    if (!ids.has(v.mustFail)) problems.push(`buggy variant '${v.id}' targets unknown test '${v.mustFail}'`);
    if (!files.has(v.file)) problems.push(`buggy variant '${v.id}' patches unknown file '${v.file}'`);
  }
  if (problems.length > 0) throw new LabDefinitionError(`lab '${lab.id}': ${problems.join('; ')}`);
}

/** A report for a run that did not get to the tests (syntax or load error). */
function failedReport(lab: Lab, status: GradeReport['status'], err: StudentSyntaxError | StudentLoadError) {
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

/**
 * Grades the student's sources: transpile each file, load them as modules, run every test. This is the
 * whole pipeline behind `spf-grade` and the browser worker; it never throws for bad student code (that
 * becomes a report with status `syntax-error` or `load-error`).
 */
export async function gradeSources(
  lab: Lab,
  sources: Sources,
  hooks: RunnerHooks = {},
): Promise<GradeReport> {
  const js = new Map<string, string>();
  try {
    for (const f of lab.files) js.set(f.name, transpileStudent(f.name, sources[f.name] ?? f.starter));
  } catch (err) {
    if (err instanceof StudentSyntaxError) return failedReport(lab, 'syntax-error', err);
    throw err;
  }
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
