import { type EarlierSolution, failedReport, gradeTranspiled } from './grade-transpiled.js';
import { LabDefinitionError, StudentLoadError, StudentSyntaxError } from './lab-errors.js';
import type { Lab } from './lab.js';
import type { GradeReport } from './result.js';
import { parentProblems, type RunnerHooks } from './runner.js';
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

/** The largest student file graded, in UTF-16 code units (a lab file is a few KiB; 256 Ki is generous). */
export const MAX_SOURCE_CHARS = 256 * 1024;

/**
 * Transpiles the student's sources (a missing file is graded as its starter). Returns the JavaScript of
 * each file, or the report of a run that cannot start: a file that is too large or does not parse.
 */
export function transpileSources(
  lab: Lab,
  sources: Sources,
): { readonly js: ReadonlyMap<string, string> } | { readonly report: GradeReport } {
  const js = new Map<string, string>();
  try {
    for (const f of lab.files) {
      const text = sources[f.name] ?? f.starter;
      if (typeof text !== 'string' || text.length > MAX_SOURCE_CHARS) {
        const size = typeof text === 'string' ? `${Math.ceil(text.length / 1024)} KiB` : `a ${typeof text}`;
        throw new StudentLoadError(
          `${f.name} is ${size}; a lab file may have at most ${MAX_SOURCE_CHARS / 1024} KiB of text. Grade the file you edited, not a generated or binary one.`,
          f.name,
        );
      }
      js.set(f.name, transpileStudent(f.name, text));
    }
  } catch (err) {
    if (err instanceof StudentSyntaxError) return { report: failedReport(lab, 'syntax-error', err) };
    if (err instanceof StudentLoadError) return { report: failedReport(lab, 'load-error', err) };
    throw err;
  }
  return { js };
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
  earlier: ReadonlyArray<{ readonly lab: Lab; readonly sources: Sources }> = [],
): Promise<GradeReport> {
  const t = transpileSources(lab, sources);
  if ('report' in t) return t.report;
  return gradeTranspiled(lab, t.js, hooks, transpileEarlier(earlier));
}

/**
 * Transpiles earlier labs' solutions for {@link gradeTranspiled} (`EarlierSolution`s): a solution that
 * does not transpile is carried as its error, so the report says why it was not used.
 */
export function transpileEarlier(
  earlier: ReadonlyArray<{ readonly lab: Lab; readonly sources: Sources }>,
): EarlierSolution[] {
  return earlier.map(({ lab, sources }) => {
    const t = transpileSources(lab, sources);
    return { lab, js: 'report' in t ? { error: t.report.error?.message ?? t.report.status } : t.js };
  });
}
