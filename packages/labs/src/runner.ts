import { type FailureDetails, TestFailure } from './lab-errors.js';
import type { Lab, LabTest, StudentModules, TestContext } from './lab.js';
import { skippedResult, type TestResult } from './result.js';
import { studentLocation } from './student-module.js';

/** Callbacks for progress (the browser worker streams them to the page). */
export type RunnerHooks = {
  /** A test is about to run (the watchdog uses this to blame a hanging test). */
  readonly onStart?: (test: LabTest) => void;
  readonly onResult?: (result: TestResult) => void;
  /** Host clock for durations; defaults to `performance.now`. */
  readonly clock?: () => number;
  /** Schedules to replay instead of exploring, by test id (reopening a failure in the schedule debugger). */
  readonly schedules?: Readonly<Record<string, string>>;
  /** Earlier labs' loaded full-marks solutions, by lab id ({@link TestContext.earlier}). */
  readonly earlier?: Readonly<Record<string, StudentModules>>;
};

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;

/**
 * Runs `f` with `console.*` appending to `out` (student printing becomes the test's output). The global
 * `console` is swapped for a capturing one rather than patched: under frozen intrinsics (the Node sandbox)
 * the console's methods cannot be reassigned.
 */
async function withCapturedConsole<T>(out: string[], f: () => Promise<T>): Promise<T> {
  const g = globalThis as unknown as { console: Console };
  const saved = g.console;
  const capturing = Object.create(saved) as Console;
  for (const k of CONSOLE_METHODS) {
    Object.defineProperty(capturing, k, {
      value: (...args: unknown[]) => {
        out.push(args.map((a) => (typeof a === 'string' ? a : safeString(a))).join(' '));
      },
    });
  }
  g.console = capturing;
  try {
    return await f();
  } finally {
    g.console = saved;
  }
}

/** At most this many characters of a test's output are kept (a print in a loop must not flood the page). */
export const MAX_OUTPUT_CHARS = 20_000;

function boundedOutput(lines: readonly string[]): string {
  const all = lines.join('\n');
  if (all.length <= MAX_OUTPUT_CHARS) return all;
  return `${all.slice(0, MAX_OUTPUT_CHARS)}\n… (${all.length - MAX_OUTPUT_CHARS} more characters of output dropped)`;
}

function safeString(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}n` : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function context(
  student: StudentModules,
  output: string[],
  schedule: string | undefined,
  earlier?: Readonly<Record<string, StudentModules>>,
): TestContext {
  return {
    student,
    ...(schedule === undefined ? {} : { schedule }),
    ...(earlier === undefined
      ? {}
      : {
          earlier: Object.freeze(
            Object.fromEntries(
              Object.entries(earlier).map(([id, modules]) => [id, context(modules, output, undefined)]),
            ),
          ),
        }),
    log: (line) => output.push(line),
    fn<F>(file: string, name: string): F {
      const mod = student[file];
      if (!mod) throw new TestFailure(`the lab file ${file} is missing`);
      const f = mod[name];
      if (typeof f !== 'function') {
        throw new TestFailure(
          `${file} must export a function named '${name}' (found ${f === undefined ? 'no such export' : typeof f})`,
        );
      }
      return f as F;
    },
  };
}

/** Checks that every parent names an earlier test; thrown as a definition error by {@link validateLab}. */
export function parentProblems(lab: Lab): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const t of lab.tests) {
    if (seen.has(t.id)) problems.push(`duplicate test id '${t.id}'`);
    if (t.parent !== undefined && !seen.has(t.parent)) {
      problems.push(`test '${t.id}' has parent '${t.parent}', which is not an earlier test`);
    }
    seen.add(t.id);
  }
  return problems;
}

/**
 * Runs a lab's tests, in order, against loaded student modules: the one runner behind the CLI grader, the
 * browser worker and the CI checks. Gating is xv6-style: a test whose parent did not pass is skipped with
 * 0 points. A test passes by returning; a {@link TestFailure} makes it `fail` with its details, any other
 * exception makes it `error` with the student's line when the stack shows it.
 */
export async function runTests(
  lab: Lab,
  student: StudentModules,
  hooks: RunnerHooks = {},
): Promise<TestResult[]> {
  const clock = hooks.clock ?? (() => performance.now());
  const status = new Map<string, TestResult['status']>();
  const results: TestResult[] = [];
  for (const t of lab.tests) {
    let r: TestResult;
    const parentStatus = t.parent === undefined ? 'pass' : status.get(t.parent);
    if (parentStatus !== 'pass') {
      r = skippedResult(t, `skipped: its parent test '${t.parent}' did not pass`);
    } else {
      hooks.onStart?.(t);
      const output: string[] = [];
      const start = clock();
      let st: TestResult['status'] = 'pass';
      let message = '';
      let details: FailureDetails = {};
      try {
        await withCapturedConsole(output, async () => {
          const schedule =
            hooks.schedules && Object.hasOwn(hooks.schedules, t.id) ? hooks.schedules[t.id] : undefined;
          await t.run(context(student, output, schedule, hooks.earlier));
        });
      } catch (err) {
        if (err instanceof TestFailure) {
          st = 'fail';
          message = err.message;
          details = err.details;
        } else {
          st = 'error';
          const loc = studentLocation(err);
          const what = err instanceof Error ? `${err.name}: ${err.message}` : `a thrown value ${String(err)}`;
          message = loc ? `${loc.file}:${loc.line}: your code threw ${what}` : `the test threw ${what}`;
          details = loc ? { file: loc.file, line: loc.line } : {};
        }
      }
      r = {
        id: t.id,
        title: t.title,
        category: t.category,
        parent: t.parent ?? null,
        status: st,
        points: st === 'pass' ? t.points : 0,
        maxPoints: t.points,
        message,
        output: boundedOutput(output),
        details,
        durationMs: Math.round((clock() - start) * 10) / 10,
      };
    }
    status.set(t.id, r.status);
    results.push(r);
    hooks.onResult?.(r);
  }
  return results;
}
