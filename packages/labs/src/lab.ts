/**
 * The lab format: everything a lab ships (files with starter and reference, hints, graded tests, known-buggy
 * variants) as plain data plus test functions, so that the same definition drives the browser workbench,
 * the command-line grader and the CI checks.
 */

/**
 * What a test checks; categories follow Pintos' weighting of functionality, robustness and regressions, plus
 * `performance` (a figure in simulated time against a threshold: Lab 7).
 */
export type TestCategory = 'functionality' | 'robustness' | 'concurrency' | 'performance' | 'regression';

/**
 * One file the student edits. Its reference solution is not part of the lab (nor of its outline, which
 * pages embed): it is in the `@spf/labs/reference` entry, loaded only where it is needed.
 */
export type LabFile = {
  /** File name as shown in the editor tab and used for relative imports (`./walk.js`). */
  readonly name: string;
  /** What the student starts from. */
  readonly starter: string;
};

/** The exports of every student file, keyed by file name. */
export type StudentModules = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** What a test function receives. */
export interface TestContext {
  /** The loaded student files' exports. */
  readonly student: StudentModules;
  /**
   * The export `name` of student file `file`, checked to be a function (a clear failure otherwise).
   * Tests use it instead of reading `student` directly.
   */
  fn<F>(file: string, name: string): F;
  /** Appends a line to the test's output. */
  log(line: string): void;
  /**
   * A schedule to replay instead of exploring (concurrency tests pass it to `checkSchedules`): set when the
   * student reopens a failure (`spf-grade --schedule`, the page's debugger link).
   */
  readonly schedule?: string;
  /**
   * The student's own solutions of earlier labs this lab builds on ({@link LabHeader.buildsOn}), by lab id:
   * present only for a solution handed to the grader that scored full marks on its lab's tests. A test
   * plugs it in where it would otherwise use the package's code (Lab 5 runs the fault under the VMA lock
   * through the student's Lab 3 `do_anonymous_page()`/`do_wp_page()`).
   */
  readonly earlier?: Readonly<Record<string, TestContext>>;
}

/** A graded test. Throw a `TestFailure` (or any error) to fail it; return to pass. */
export type LabTest = {
  /** Stable identifier, used by gating, buggy variants and `-t` on the command line. */
  readonly id: string;
  readonly title: string;
  readonly points: number;
  readonly category: TestCategory;
  /** A test that must pass first (xv6-style gating): if it does not, this test is skipped with 0 points. */
  readonly parent?: string;
  /** One sentence telling the student what is being checked. */
  readonly description: string;
  /** Time limit for this test under a watchdog (default: the watchdog's per-test limit). */
  readonly timeoutMs?: number;
  readonly run: (ctx: TestContext) => void | Promise<void>;
};

/** A known-wrong solution: the reference with textual replacements, and the test it must fail. */
export type BuggyVariant = {
  readonly id: string;
  readonly description: string;
  /** The file to patch and the replacements (each `from` must occur exactly once in the reference). */
  readonly file: string;
  readonly patches: ReadonlyArray<readonly [from: string, to: string]>;
  /** The id of the test aimed at this bug. */
  readonly mustFail: string;
};

/** Where a lab plugs the student's code into a package. */
export type InjectionPoint = {
  /** The package, e.g. `@spf/pagetable`. */
  readonly package: string;
  /** The interface implemented and where it is accepted, e.g. "`Walker` (walker.ts), `new Mmu({ walker })`". */
  readonly point: string;
};

/** The data of a test without its code: what pages and reports need. */
export type TestOutline = Pick<
  LabTest,
  'id' | 'title' | 'points' | 'category' | 'parent' | 'description' | 'timeoutMs'
>;

/** What a lab and its outline share: identity, handout, files and hints. */
export type LabHeader = {
  readonly id: string;
  readonly title: string;
  /**
   * Bumped when tests, hints or starter change. Saved progress is keyed by id and version; a newer version
   * refreshes tests and hints while keeping the student's code.
   */
  readonly version: number;
  /** One paragraph for the lab index. */
  readonly summary: string;
  readonly injection: InjectionPoint;
  readonly files: readonly LabFile[];
  /** Progressive hints, revealed one at a time. */
  readonly hints: readonly string[];
  /**
   * Earlier labs whose full-marks solution this lab can run on (their tests then run as this lab's
   * `regression` category, worth no points of this lab). Default none.
   */
  readonly buildsOn?: readonly string[];
};

/**
 * A lab as plain JSON-able data (no test code, no modules): what the course page embeds, and all that a
 * watchdog needs to build a report for a run it had to stop.
 */
export type LabOutline = LabHeader & {
  readonly tests: readonly TestOutline[];
  /** Ids and descriptions of the known-buggy variants. */
  readonly buggyVariants: ReadonlyArray<Pick<BuggyVariant, 'id' | 'description' | 'mustFail'>>;
};

/** The outline of a lab (drops test code and module access). */
export function labOutline(lab: Lab): LabOutline {
  return {
    id: lab.id,
    title: lab.title,
    version: lab.version,
    summary: lab.summary,
    injection: lab.injection,
    files: lab.files,
    hints: lab.hints,
    ...(lab.buildsOn === undefined ? {} : { buildsOn: lab.buildsOn }),
    tests: lab.tests.map(({ id, title, points, category, parent, description, timeoutMs }) => ({
      id,
      title,
      points,
      category,
      description,
      ...(parent === undefined ? {} : { parent }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    })),
    buggyVariants: lab.buggyVariants.map(({ id, description, mustFail }) => ({ id, description, mustFail })),
  };
}

/** A lab. */
export type Lab = LabHeader & {
  readonly tests: readonly LabTest[];
  readonly buggyVariants: readonly BuggyVariant[];
  /**
   * The modules student code may import, by specifier (for example `@spf/pagetable`). Called once per
   * grading run; the values are the module namespaces.
   */
  readonly modules: () => Readonly<Record<string, Readonly<Record<string, unknown>>>>;
};
