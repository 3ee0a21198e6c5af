// How robust is each explored check's fixed seed? For every explored test of every lab (the `LABn_SEARCH`
// records), this runs the test at seeds 1..N with the test's own policy, budget and depth, on the
// reference solution and on each known-buggy variant aimed at the test (plus the variants listed in ALSO,
// caught by it as a side effect), and prints how many seeds catch each variant and how many explore the
// reference clean. A fixed seed is only a sample: a check whose variant is caught at, say, 30/50 seeds
// passes that variant for another seed, and the next unrelated change to the kernel can move the schedules
// under the fixed seed the same way. The README keeps the table this prints.
//
// Run: npx tsx bench/budget-robustness.ts [--seeds N] [--lab lab5] [--check pervma-vs-mremap]
//        [--cap K] [--set lab5/pervma-vs-mremap=pct:20:3] [--no-reference]
//   --seeds N  seeds 1..N (default 50)
//   --cap K    explore up to K times the budget, and print for each variant the smallest budget that
//              catches it at >= 95% of the seeds (default 1: the budget itself)
//   --set      try another policy:runs[:depth] for one check (the seed is the one varied)
// Asserts nothing; prints figures.
import type { ExploreOptions } from '@spf/machine';
import { transpileSources } from '../src/grade.js';
import type { Lab, LabTest, StudentModules } from '../src/lab.js';
import { LAB2_SEARCH } from '../src/lab2/tests.js';
import { LAB3_SEARCH } from '../src/lab3/tests.js';
import { LAB4_SEARCH } from '../src/lab4/tests.js';
import { LAB5_SEARCH } from '../src/lab5/tests.js';
import { LAB7_SEARCH } from '../src/lab7/tests.js';
import { getLab } from '../src/registry.js';
import { referenceSources } from '../src/reference-solutions.js';
import { runTests } from '../src/runner.js';
import { loadStudentModules } from '../src/student-module.js';
import { variantSources } from '../src/variants.js';

/** Every explored check, by lab: the record its test reads its search from. */
const SEARCHES: Readonly<Record<string, Record<string, ExploreOptions>>> = {
  lab2: LAB2_SEARCH,
  lab3: LAB3_SEARCH,
  lab4: LAB4_SEARCH,
  lab5: LAB5_SEARCH,
  lab7: LAB7_SEARCH,
};

/**
 * Variants an explored check also catches though another test is aimed at them (the README's "also"):
 * a check that is the only one to explore a race should catch them reliably too.
 */
const ALSO: Readonly<Record<string, readonly string[]>> = {
  'lab4/spec-vs-mremap': ['no-range-check'],
  'lab4/spec-vs-munmap': ['no-vma-checks-in-pte-map-lock'],
  'lab4/spec-vs-mprotect': ['no-recheck-after-ptl'],
};

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const nSeeds = Number(opt('--seeds') ?? 50);
const cap = Number(opt('--cap') ?? 1);
const onlyLab = opt('--lab');
const onlyCheck = opt('--check');
const withReference = !args.includes('--no-reference');
const overrides = new Map<string, ExploreOptions>();
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--set') continue;
  const [key, spec] = args[i + 1].split('=');
  const [policy, runs, depth] = spec.split(':');
  if (policy !== 'pct' && policy !== 'random') throw new Error(`--set ${args[i + 1]}: pct or random`);
  overrides.set(key, {
    policy,
    runs: Number(runs),
    ...(depth === undefined ? {} : { depth: Number(depth) }),
  });
}

async function load(lab: Lab, sources: Record<string, string>): Promise<StudentModules> {
  const t = transpileSources(lab, sources);
  if ('report' in t) throw new Error(`${lab.id}: ${t.report.error?.message}`);
  return loadStudentModules(t.js, lab.modules());
}

/** The test alone (no parent: this measures the check, not the gating). */
const alone = (lab: Lab, test: LabTest): Lab => ({ ...lab, tests: [{ ...test, parent: undefined }] });

/**
 * Runs `test` once per seed with `runs` schedules; for each seed, the schedule (1-based) at which it
 * failed, or null if it passed. The explorer draws schedule r of a seed the same way whatever the budget,
 * so a seed whose first failure is at schedule k is caught by every budget >= k.
 */
async function firstFailures(
  lab: Lab,
  test: LabTest,
  student: StudentModules,
  record: Record<string, ExploreOptions>,
  search: ExploreOptions,
  runs: number,
): Promise<{ at: (number | null)[]; ms: number; other: string[] }> {
  const at: (number | null)[] = [];
  const other: string[] = [];
  const saved = record[test.id];
  const t0 = performance.now();
  try {
    for (let seed = 1; seed <= nSeeds; seed++) {
      record[test.id] = { ...search, runs, seed };
      const [r] = await runTests(alone(lab, test), student);
      if (r.status === 'pass') at.push(null);
      else {
        const m = /after (\d+) schedule/.exec(r.message);
        if (!m) other.push(`seed ${seed}: ${r.status}: ${r.message.slice(0, 160)}`);
        at.push(m ? Number(m[1]) : 1);
      }
    }
  } finally {
    record[test.id] = saved;
  }
  return { at, ms: performance.now() - t0, other };
}

const caughtAt = (at: readonly (number | null)[], budget: number) =>
  at.filter((k) => k !== null && k <= budget).length;

/** The smallest budget that catches at least 95% of the seeds, or null within the explored cap. */
function budgetFor95(at: readonly (number | null)[]): number | null {
  const need = Math.ceil(0.95 * at.length);
  const sorted = at.filter((k): k is number => k !== null).sort((a, b) => a - b);
  return sorted.length >= need ? sorted[need - 1] : null;
}

const describeSearch = (s: ExploreOptions) =>
  `${s.policy} ${s.runs}${s.policy === 'pct' ? ` d${s.depth ?? 3}` : ''} (seed ${s.seed ?? 1})`;

console.log(
  `seeds 1..${nSeeds}; a variant must be caught at >= 95% of them, the reference at none${cap > 1 ? `; explored up to ${cap}x the budget` : ''}\n`,
);
console.log(
  '| check | program | search | caught / clean | 95% budget | first failing schedule (median, max) | host s |',
);
console.log('| --- | --- | --- | --- | --- | --- | ---: |');
for (const [labId, record] of Object.entries(SEARCHES)) {
  if (onlyLab !== undefined && onlyLab !== labId) continue;
  const lab = getLab(labId);
  for (const testId of Object.keys(record)) {
    if (onlyCheck !== undefined && onlyCheck !== testId) continue;
    const key = `${labId}/${testId}`;
    const test = lab.tests.find((t) => t.id === testId);
    if (!test) throw new Error(`${key}: no such test`);
    const search = { ...record[testId], ...overrides.get(key) };
    const budget = search.runs ?? 1000;
    const variants = [
      ...lab.buggyVariants.filter((v) => v.mustFail === testId).map((v) => v.id),
      ...(ALSO[key] ?? []),
    ];
    const programs: [string, Record<string, string>][] = [
      ...(withReference ? [['reference', referenceSources(lab)] as [string, Record<string, string>]] : []),
      ...variants.map((v) => [v, variantSources(lab, v)] as [string, Record<string, string>]),
    ];
    for (const [name, sources] of programs) {
      const student = await load(lab, sources);
      const isRef = name === 'reference';
      // The reference must be clean at the budget; exploring it further only costs time.
      const runs = isRef ? budget : budget * cap;
      const { at, ms, other } = await firstFailures(lab, test, student, record, search, runs);
      const n = caughtAt(at, budget);
      const found = at.filter((k): k is number => k !== null).sort((a, b) => a - b);
      const median = found.length ? found[Math.floor(found.length / 2)] : '-';
      const max = found.length ? found[found.length - 1] : '-';
      const b95 = isRef ? '' : (budgetFor95(at) ?? `> ${runs}`);
      const verdict = isRef
        ? `clean at ${nSeeds - n}/${nSeeds}${n > 0 ? ' **FAILS**' : ''}`
        : `${n}/${nSeeds}${n < 0.95 * nSeeds ? ' **< 95%**' : ''}`;
      console.log(
        `| ${key} | ${name} | ${describeSearch(search)} | ${verdict} | ${b95} | ${isRef ? '' : `${median}, ${max}`} | ${(ms / 1000).toFixed(1)} |`,
      );
      for (const o of other) console.log(`|   | ${name} | not an explored failure: ${o} | | | | |`);
    }
  }
}
