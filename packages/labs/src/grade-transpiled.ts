import { LabDefinitionError, StudentLoadError, type StudentSyntaxError } from './lab-errors.js';
import type { Lab, StudentModules } from './lab.js';
import { type EarlierUse, type GradeReport, skippedResult, type TestResult, totalPoints } from './result.js';
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
  earlier: readonly EarlierSolution[] = [],
): Promise<GradeReport> {
  let student: Awaited<ReturnType<typeof loadStudentModules>>;
  try {
    student = await loadStudentModules(js, lab.modules());
  } catch (err) {
    if (err instanceof StudentLoadError) return failedReport(lab, 'load-error', err);
    throw err;
  }
  const prior = await gradeEarlier(lab, earlier, hooks);
  const results = await runTests(lab, student, {
    ...hooks,
    ...(prior.uses.length === 0 ? {} : { earlier: prior.modules }),
  });
  const all = [...results, ...prior.regression];
  for (const r of prior.regression) hooks.onResult?.(r);
  return {
    lab: lab.id,
    version: lab.version,
    status: 'complete',
    score: totalPoints(all),
    maxScore: maxScore(lab),
    results: all,
    error: null,
    ...(prior.uses.length === 0 ? {} : { earlier: prior.uses }),
  };
}

/**
 * An earlier lab's solution handed to a grading (`spf-grade lab5 ... --with lab3=...`, or the workbench's
 * saved full-marks solution): the lab and the solution's transpiled files, or why they could not be
 * transpiled.
 */
export type EarlierSolution = {
  readonly lab: Lab;
  readonly js: ReadonlyMap<string, string> | { readonly error: string };
};

/**
 * Grades each earlier solution with its own lab's tests. Their results become this lab's `regression`
 * results (`<lab>/<test id>`, no points of this lab); a solution with full marks is handed to this lab's
 * tests ({@link RunnerHooks.earlier}), any other is not used (the tests run on the package's code).
 * Throws {@link LabDefinitionError} for a lab that this lab does not build on.
 */
async function gradeEarlier(lab: Lab, earlier: readonly EarlierSolution[], hooks: RunnerHooks) {
  const modules: Record<string, StudentModules> = {};
  const uses: EarlierUse[] = [];
  const regression: TestResult[] = [];
  for (const e of earlier) {
    if (!(lab.buildsOn ?? []).includes(e.lab.id)) {
      throw new LabDefinitionError(
        `${lab.id} does not build on ${e.lab.id}; it builds on ${(lab.buildsOn ?? []).join(', ') || 'no earlier lab'}`,
      );
    }
    let loaded: StudentModules | null = null;
    let error: string | undefined;
    if ('error' in e.js) error = String(e.js.error);
    else {
      try {
        loaded = await loadStudentModules(e.js as ReadonlyMap<string, string>, e.lab.modules());
      } catch (err) {
        if (!(err instanceof StudentLoadError)) throw err;
        error = err.message;
      }
    }
    const results =
      loaded === null
        ? e.lab.tests.map((t) =>
            skippedResult(t, `not run: your ${e.lab.id} solution did not load: ${error}`),
          )
        : await runTests(e.lab, loaded, {
            // The watchdog times each one (a hanging earlier solution is a timeout, not a hung grader).
            onStart: (t) => hooks.onStart?.({ ...t, id: `${e.lab.id}/${t.id}` }),
            ...(hooks.clock === undefined ? {} : { clock: hooks.clock }),
          });
    const score = totalPoints(results);
    const full = loaded !== null && score === maxScore(e.lab);
    if (full && loaded !== null) modules[e.lab.id] = loaded;
    uses.push({
      lab: e.lab.id,
      score,
      maxScore: maxScore(e.lab),
      used: full,
      ...(error === undefined ? {} : { error }),
    });
    for (const r of results) {
      regression.push({
        ...r,
        id: `${e.lab.id}/${r.id}`,
        title: `${e.lab.title}: ${r.title}`,
        category: 'regression',
        parent: r.parent === null ? null : `${e.lab.id}/${r.parent}`,
        points: 0,
        maxPoints: 0,
      });
    }
  }
  return { modules, uses, regression };
}
