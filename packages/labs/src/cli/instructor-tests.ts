import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Lab, LabTest, TestCategory } from '../lab.js';
import { parentProblems } from '../runner.js';

/** An instructor's tests directory cannot be used (missing, empty, or a module without valid `tests`). */
export class InstructorTestsError extends Error {
  override name = 'InstructorTestsError';
}

const CATEGORIES: readonly TestCategory[] = [
  'functionality',
  'robustness',
  'concurrency',
  'performance',
  'regression',
];

/** The test modules of a directory: its `.mjs` and `.js` files, in name order (absolute paths). */
export function instructorTestFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new InstructorTestsError(`cannot read the tests directory ${dir}: ${(err as Error).message}`);
  }
  const files = names.filter((n) => /\.(mjs|js)$/.test(n)).sort();
  if (files.length === 0)
    throw new InstructorTestsError(`${dir} has no test modules (.mjs or .js files exporting \`tests\`)`);
  return files.map((n) => resolve(dir, n));
}

/** Checks one exported test and says what is wrong with it. */
function checkTest(file: string, t: unknown, i: number): LabTest {
  const where = `${file}: tests[${i}]`;
  if (typeof t !== 'object' || t === null) throw new InstructorTestsError(`${where} is not an object`);
  const o = t as Record<string, unknown>;
  if (typeof o.id !== 'string' || o.id === '')
    throw new InstructorTestsError(`${where} needs an id (a string)`);
  if (typeof o.title !== 'string') throw new InstructorTestsError(`${where} (${o.id}) needs a title`);
  if (typeof o.points !== 'number' || !(o.points >= 0))
    throw new InstructorTestsError(`${where} (${o.id}) needs points (a number >= 0)`);
  if (!CATEGORIES.includes(o.category as TestCategory))
    throw new InstructorTestsError(`${where} (${o.id}): category must be one of ${CATEGORIES.join(', ')}`);
  if (typeof o.run !== 'function')
    throw new InstructorTestsError(`${where} (${o.id}) needs a run(ctx) function`);
  if (o.parent !== undefined && typeof o.parent !== 'string')
    throw new InstructorTestsError(`${where} (${o.id}): parent must be a test id`);
  return { description: '', ...o } as LabTest;
}

/**
 * Loads an instructor's hidden tests: each module in `files` exports `tests`, an array of `LabTest`s
 * (the lab format's tests: id, title, points, category, optional parent and timeoutMs, run(ctx)).
 */
export async function loadInstructorTests(files: readonly string[]): Promise<LabTest[]> {
  const out: LabTest[] = [];
  for (const file of files) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      throw new InstructorTestsError(`cannot load ${file}: ${(err as Error).message}`);
    }
    if (!Array.isArray(mod.tests))
      throw new InstructorTestsError(`${file} must export \`tests\`, an array of tests`);
    for (const [i, t] of mod.tests.entries()) out.push(checkTest(file, t, i));
  }
  return out;
}

/** The lab with the instructor's tests after its own (checked: unique ids, parents before children). */
export function withInstructorTests(lab: Lab, tests: readonly LabTest[]): Lab {
  // (The grading child loads this, so it uses the runner's check rather than grade.ts, which transpiles.)
  const extended: Lab = { ...lab, tests: [...lab.tests, ...tests] };
  const problems = parentProblems(extended);
  if (problems.length > 0)
    throw new InstructorTestsError(`lab '${lab.id}' with your tests: ${problems.join('; ')}`);
  return extended;
}

/** The directory of a test file (what the sandbox must be allowed to read). */
export const testDirectory = (file: string) => join(file, '..');
