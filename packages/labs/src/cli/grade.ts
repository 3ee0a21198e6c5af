#!/usr/bin/env node
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  watchFile,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stepThrough } from '../format-debug.js';
import { formatReport, formatResult } from '../format-report.js';
import { MAX_SOURCE_CHARS, type Sources } from '../grade.js';
import { gradescopeResults } from '../gradescope.js';
import { formatExercise, PracticeError } from '../practice/practice.js';
import { practiceExercise } from '../practice/practice-registry.js';
import type { TestResult } from '../result.js';
import type { Lab } from '../lab.js';
import { getLab, labs } from '../registry.js';
import { referenceSources } from '../reference-solutions.js';
import { starterSources, variantSources } from '../variants.js';
import {
  InstructorTestsError,
  instructorTestFiles,
  loadInstructorTests,
  withInstructorTests,
} from './instructor-tests.js';
import { gradeInSandbox } from './sandbox.js';

/** The longest delay a JavaScript timer can wait (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The most bytes read from one solution file: UTF-8 of the largest file the grader accepts. */
const MAX_FILE_BYTES = MAX_SOURCE_CHARS * 4;

const USAGE = `usage: spf-grade <lab> [solution-file ...]   grade files (default: the starter)
       spf-grade <lab> --reference | --variant <id>
       spf-grade <lab> files... --watch  grade again on every save
       spf-grade <lab> files... --with <earlier-lab>[=<file>,...]
                                       run on your full-marks solution of an earlier lab (its files, or the
                                       one remembered in ~/.spf-grade/solutions/ when you got full marks);
                                       its tests run as the regression category
       spf-grade <lab> --hint          show the next hint (remembered per lab in ~/.spf-grade/hints.json)
       spf-grade <lab> files... --test <id> [--schedule <s>] --debug
                                       step through a concurrency test's failing schedule (n, p, <step>, q)
       spf-grade practice <lab> [-s <seed>] [-c]
                                       a fresh exercise to do by hand (-c: with the answers); no grading
       spf-grade --list
options: --tests <dir>  also run the tests exported (\`tests\`) by the .mjs/.js modules in <dir> (an
         instructor's hidden tests);  --test <id>  run one test (and the tests it depends on);  --schedule <s>  replay this schedule in
         that test instead of exploring (the schedule a failure printed);  --format text|json|gradescope
         (gradescope: the results.json of Gradescope's autograder);  --json  same as --format json;  --time-limit <ms>  per-test limit (default 3000, at most ${MAX_TIMER_MS})
paths are relative to the directory you ran the command in`;

function fail(msg: string): never {
  console.error(`spf-grade: ${msg}\n${USAGE}`);
  process.exit(2);
}

/**
 * The directory relative paths are resolved against: the one the user ran the command in. A package script
 * (`pnpm grade`, `npm run grade`) runs in the repository root, and pnpm and npm then name the user's
 * directory in INIT_CWD.
 */
function userDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.npm_lifecycle_event && env.INIT_CWD ? env.INIT_CWD : process.cwd();
}

/** Reads a solution file, refusing anything larger than the grader accepts without reading it whole. */
function readBounded(path: string): string {
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).isDirectory()) fail(`${path} is a directory; name a solution file`);
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > MAX_FILE_BYTES) {
        fail(`${path} is larger than ${MAX_FILE_BYTES / 1024} KiB; a lab file is a few KiB of TypeScript`);
      }
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Maps solution files to lab files by base name; a single file for a one-file lab may have any name. */
function readSources(lab: Lab, paths: string[]): Sources {
  const sources: Record<string, string> = {};
  const dir = userDirectory();
  for (const p of paths) {
    let text: string;
    try {
      text = readBounded(resolve(dir, p));
    } catch (err) {
      fail(`cannot read ${p} (in ${dir}): ${(err as Error).message}`);
    }
    const name = basename(p);
    const target = lab.files.some((f) => f.name === name)
      ? name
      : lab.files.length === 1 && paths.length === 1
        ? lab.files[0].name
        : undefined;
    if (!target)
      fail(`${p} is not a file of ${lab.id} (its files: ${lab.files.map((f) => f.name).join(', ')})`);
    sources[target] = text;
  }
  return sources;
}

/** Where `--hint` remembers how many hints were shown ($SPF_GRADE_STATE overrides it). */
function hintStateFile(): string {
  return process.env.SPF_GRADE_STATE ?? join(homedir(), '.spf-grade', 'hints.json');
}

/**
 * Where full-marks solutions are remembered, one JSON file per lab (next to the hint state, so
 * $SPF_GRADE_STATE moves both): what `--with <lab>` without files uses.
 */
function solutionFile(labId: string): string {
  return join(dirname(hintStateFile()), 'solutions', `${labId}.json`);
}

/** Remembers a full-marks solution of `lab` for later labs (`--with`); says where, or why it could not. */
function rememberSolution(lab: Lab, sources: Sources): void {
  const file = solutionFile(lab.id);
  try {
    mkdirSync(dirname(file), { recursive: true });
    const saved = { lab: lab.id, version: lab.version, files: sources };
    writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
    const later = labs.filter((l) => l.buildsOn?.includes(lab.id)).map((l) => l.id);
    if (later.length > 0)
      console.log(
        `Full marks: remembered in ${file}; ${later.join(' and ')} can run on it (--with ${lab.id}).`,
      );
  } catch (err) {
    console.error(`spf-grade: could not remember the solution in ${file}: ${(err as Error).message}`);
  }
}

/**
 * The earlier labs' solutions named by `--with <lab>=<file>,<file>` (files, relative to the user's
 * directory) or `--with <lab>` (the remembered full-marks solution), checked against `lab.buildsOn`.
 */
function earlierSources(lab: Lab, specs: readonly string[]): Record<string, Sources> {
  const out: Record<string, Sources> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    if (!(lab.buildsOn ?? []).includes(id)) {
      const on = lab.buildsOn?.length
        ? `it builds on ${lab.buildsOn.join(', ')}`
        : 'it builds on no earlier lab';
      fail(`--with ${spec}: ${lab.id} cannot run on a ${id} solution; ${on}`);
    }
    const earlier = getLab(id);
    if (eq >= 0) {
      const files = spec
        .slice(eq + 1)
        .split(',')
        .filter((f) => f.length > 0);
      if (files.length === 0) fail(`--with ${spec}: name the files of your ${id} solution after '='`);
      out[id] = readSources(earlier, files);
      continue;
    }
    const file = solutionFile(id);
    let saved: unknown;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      fail(
        `--with ${id}: no remembered ${id} solution in ${file}; grade one to full marks first (spf-grade ${id} <files>), or name its files: --with ${id}=<file>,<file>`,
      );
    }
    const files = (saved as { files?: unknown } | null)?.files;
    if (
      typeof files !== 'object' ||
      files === null ||
      Object.values(files).some((t) => typeof t !== 'string')
    )
      fail(`--with ${id}: ${file} is not a remembered solution (no "files" of text); grade ${id} again`);
    out[id] = files as Sources;
  }
  return out;
}

/** Prints the next hint of `lab` and remembers that it was shown. */
function showNextHint(lab: Lab): void {
  const file = hintStateFile();
  let state: Record<string, number> = {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed && typeof parsed === 'object') state = parsed as Record<string, number>;
  } catch {
    // no state yet, or unreadable: start from the first hint
  }
  const key = `${lab.id}@${lab.version}`;
  const shown = Number.isInteger(state[key]) ? Math.max(0, state[key]) : 0;
  const n = lab.hints.length;
  if (shown >= n) {
    console.log(`All ${n} hints of ${lab.id} have been shown:`);
    for (const [i, h] of lab.hints.entries()) console.log(`${i + 1}. ${h}`);
    return;
  }
  console.log(`Hint ${shown + 1} of ${n} (${lab.title}):\n${lab.hints[shown]}`);
  state[key] = shown + 1;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`);
  } catch (err) {
    console.error(`spf-grade: could not remember the hint in ${file}: ${(err as Error).message}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return false;
    args.splice(i, 1);
    return true;
  };
  const options = (name: string) => {
    const found: string[] = [];
    for (let i = args.indexOf(name); i >= 0; i = args.indexOf(name)) {
      const v = args[i + 1];
      if (v === undefined) fail(`${name} needs a value`);
      found.push(v);
      args.splice(i, 2);
    }
    return found;
  };
  const option = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined) fail(`${name} needs a value`);
    args.splice(i, 2);
    return v;
  };
  if (flag('--help') || flag('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (args[0] === 'practice') return practice(args.slice(1));
  if (flag('--list')) {
    for (const l of labs)
      console.log(`${l.id}\t${l.title} (v${l.version}): ${l.files.map((f) => f.name).join(', ')}`);
    return 0;
  }
  const jsonFlag = flag('--json');
  const hint = flag('--hint');
  const watch = flag('--watch');
  const only = option('--test');
  const schedule = option('--schedule');
  const testsDir = option('--tests');
  const withSpecs = options('--with');
  const debug = flag('--debug');
  const format = option('--format') ?? (jsonFlag ? 'json' : 'text');
  if (!['text', 'json', 'gradescope'].includes(format))
    fail(`--format must be text, json or gradescope (got ${format})`);
  const json = format !== 'text';
  const reference = flag('--reference');
  const variant = option('--variant');
  const limit = option('--time-limit');
  const testTimeLimitMs = limit === undefined ? undefined : Number(limit);
  if (
    testTimeLimitMs !== undefined &&
    !(Number.isInteger(testTimeLimitMs) && testTimeLimitMs >= 1 && testTimeLimitMs <= MAX_TIMER_MS)
  )
    fail(`--time-limit must be a whole number of ms from 1 to ${MAX_TIMER_MS} (got ${limit})`);
  const unknown = args.find((a) => a.startsWith('--'));
  if (unknown) fail(`unknown option ${unknown}`);
  const [labId, ...files] = args;
  if (!labId) fail('name a lab');
  let lab: Lab;
  try {
    lab = getLab(labId);
  } catch (err) {
    fail((err as Error).message);
  }
  let testFiles: string[] = [];
  if (testsDir !== undefined) {
    try {
      testFiles = instructorTestFiles(resolve(userDirectory(), testsDir));
      lab = withInstructorTests(lab, await loadInstructorTests(testFiles));
    } catch (err) {
      if (err instanceof InstructorTestsError) fail(err.message);
      throw err;
    }
  }
  if (hint) {
    showNextHint(lab);
    return 0;
  }
  if (only !== undefined && !lab.tests.some((t) => t.id === only)) {
    fail(`${lab.id} has no test '${only}'; its tests are ${lab.tests.map((t) => t.id).join(', ')}`);
  }
  if (watch && files.length === 0) fail('--watch needs the solution files to watch');
  if ((schedule !== undefined || debug) && only === undefined)
    fail('--schedule and --debug need --test <id>: the concurrency test whose schedule to replay');
  if (debug && (watch || json)) fail('--debug is interactive text: leave out --watch and --format');
  if ((reference || variant !== undefined) && files.length > 0)
    fail(`--reference and --variant grade the lab's own files; do not name solution files too`);
  if (reference && variant !== undefined) fail('choose --reference or --variant, not both');
  if (variant !== undefined && !lab.buggyVariants.some((v) => v.id === variant)) {
    const known = lab.buggyVariants.map((v) => v.id).join(', ');
    fail(`${lab.id} has no buggy variant '${variant}'; its variants are ${known}`);
  }
  const earlier = earlierSources(lab, withSpecs);
  let sources: Sources;
  if (reference) sources = referenceSources(lab);
  else if (variant !== undefined) sources = variantSources(lab, variant);
  else sources = files.length > 0 ? readSources(lab, files) : starterSources(lab);
  const run = async (src: Sources): Promise<number> => {
    if (!json) console.log(`${lab.title} (${lab.id} v${lab.version})`);
    const printed = new Set<string>();
    const report = await gradeInSandbox(lab, src, {
      testTimeLimitMs,
      only,
      ...(testFiles.length > 0 ? { testFiles } : {}),
      ...(schedule !== undefined && only !== undefined ? { schedules: { [only]: schedule } } : {}),
      ...(Object.keys(earlier).length > 0 ? { earlier } : {}),
      onResult: json
        ? undefined
        : (r) => {
            printed.add(r.id);
            console.log(formatResult(r));
            if (r.details.debug && !debug)
              console.log(`   debug it: ${debugCommand(lab, r, files, reference, variant)}`);
          },
    });
    const shown = format === 'gradescope' ? gradescopeResults(report) : report;
    if (json) console.log(JSON.stringify(shown, (_k, v) => (typeof v === 'bigint' ? String(v) : v), 2));
    // Results already streamed are not repeated; the rest (skipped after a timeout or load error) and the score.
    else console.log(formatReport({ ...report, results: report.results.filter((r) => !printed.has(r.id)) }));
    const failed = report.results.find((r) => r.id === only && r.details.debug);
    if (debug) {
      if (failed?.details.debug) await debugInteractively(failed, src);
      else
        console.log(
          `spf-grade: test ${only} did not fail with a schedule, so there is nothing to step through`,
        );
    }
    const full = report.status === 'complete' && report.score === report.maxScore;
    // Only the student's own files, graded whole, are remembered for later labs (--with).
    if (full && !reference && variant === undefined && only === undefined && files.length > 0 && !json)
      rememberSolution(lab, src);
    return full ? 0 : 1;
  };
  const code = await run(sources);
  if (!watch) return code;
  return watchAndRegrade(lab, files, run);
}

/**
 * `spf-grade practice <lab> [-s seed] [-c]`: prints a practice exercise (OSTEP's `-s seed -c` style). Without
 * `-s` the seed is drawn at random and printed, so the exercise can be shown again with its answers.
 */
function practice(argv: string[]): number {
  const args = [...argv];
  let seed: number | undefined;
  let answers = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-c' || a === '--answers') answers = true;
    else if (a === '-s' || a === '--seed') {
      const v = args[++i];
      if (v === undefined || !/^\d+$/.test(v))
        fail(`${a} needs a whole number from 0 to 4294967295 (got ${v ?? 'nothing'})`);
      seed = Number(v);
    } else if (a.startsWith('-')) fail(`unknown practice option ${a} (use -s <seed> and -c)`);
    else rest.push(a);
  }
  if (rest.length !== 1) fail('practice needs one lab, e.g. spf-grade practice lab1 -s 7');
  const chosen = seed ?? Math.floor(Math.random() * 2 ** 32);
  try {
    console.log(formatExercise(practiceExercise(rest[0], chosen), answers));
  } catch (err) {
    if (err instanceof PracticeError) fail(err.message);
    throw err;
  }
  if (seed === undefined && !answers)
    console.log(`(seed ${chosen}: spf-grade practice ${rest[0]} -s ${chosen} -c shows the answers)`);
  return 0;
}

/** Quotes a command-line argument for a POSIX shell when it needs it. */
function shellArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The command that reopens a failing test's schedule in the text debugger. */
function debugCommand(
  lab: Lab,
  r: TestResult,
  files: readonly string[],
  reference: boolean,
  variant: string | undefined,
): string {
  const what = reference ? ['--reference'] : variant !== undefined ? ['--variant', variant] : files;
  const args = [lab.id, ...what, '--test', r.id, '--schedule', r.details.schedule ?? '', '--debug'];
  return `spf-grade ${args.map(shellArg).join(' ')}`;
}

/** `--debug`: steps through the failing test's schedule, reading commands from standard input. */
async function debugInteractively(r: TestResult, sources: Sources): Promise<void> {
  const debug = r.details.debug;
  if (!debug) return;
  console.log(`\nSchedule debugger: ${r.id} (${debug.cpus} CPUs, ${debug.totalSteps} steps)`);
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  await stepThrough(
    debug,
    async () => {
      if (process.stdin.isTTY) process.stdout.write('debug> ');
      const n = await lines.next();
      return n.done ? null : n.value;
    },
    (text) => console.log(text),
    sources,
  );
  rl.close();
}

/**
 * `--watch`: re-grades whenever a solution file changes (polled, so editors that replace the file on save
 * are seen too), one run at a time; runs until interrupted.
 */
function watchAndRegrade(lab: Lab, files: string[], run: (s: Sources) => Promise<number>): Promise<number> {
  const dir = userDirectory();
  const paths = files.map((p) => resolve(dir, p));
  let running = false;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const regrade = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      if (paths.every((p) => existsSync(p))) {
        console.log(`\n--- ${files.join(', ')} changed: grading again ---`);
        await run(readSources(lab, files));
      }
    } while (again);
    running = false;
    console.log(`--- watching ${files.join(', ')} (Ctrl-C to stop) ---`);
  };
  for (const p of paths) {
    watchFile(p, { interval: 200 }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void regrade(), 100);
    });
  }
  console.log(`--- watching ${files.join(', ')} (Ctrl-C to stop) ---`);
  return new Promise<number>(() => {});
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(
      `spf-grade: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(3);
  },
);
