import type { LabOutline } from './lab.js';
import type { GradeReport, TestResult } from './result.js';
import { stoppedReport, timeoutReport } from './timeout-report.js';

/** The student's files by name; a missing file is graded as its starter. */
export type Sources = Readonly<Record<string, string>>;

/** Page (or CLI) to worker: grade these sources for this lab. */
export type GradeRequest = {
  readonly type: 'grade';
  readonly lab: string;
  readonly sources: Sources;
  /** Schedules to replay instead of exploring, by test id (reopening a failure in the schedule debugger). */
  readonly schedules?: Readonly<Record<string, string>>;
  /**
   * The student's solutions of earlier labs the lab builds on, by lab id (`Lab.buildsOn`): each is graded
   * with its own lab's tests (as `regression` results) and, with full marks, used by this lab's tests.
   */
  readonly earlier?: Readonly<Record<string, Sources>>;
};

/** Worker to page (or CLI): progress and the final report. */
export type WorkerMessage =
  | { readonly type: 'start'; readonly test: string; readonly timeoutMs?: number }
  | { readonly type: 'result'; readonly result: TestResult }
  | { readonly type: 'done'; readonly report: GradeReport }
  | { readonly type: 'crash'; readonly message: string };

/** The little a watchdog needs from a worker: a browser `Worker` or a Node `worker_threads` Worker. */
export interface WorkerPort {
  post(msg: GradeRequest): void;
  listen(onMessage: (m: WorkerMessage) => void, onError: (message: string) => void): void;
  terminate(): void;
}

/** Time limits for a watched grading run. */
export type WatchdogOptions = {
  /** How long one test may run before the worker is terminated (default 3000 ms; a test's own `timeoutMs` wins). */
  readonly testTimeLimitMs?: number;
  /** How long transpiling and loading may take before the first test starts (default 5000 ms). */
  readonly loadTimeLimitMs?: number;
  readonly onStart?: (testId: string) => void;
  readonly onResult?: (result: TestResult) => void;
  /** Schedules to replay instead of exploring, by test id (see {@link GradeRequest}). */
  readonly schedules?: Readonly<Record<string, string>>;
  /** Earlier labs' solutions (see {@link GradeRequest}). */
  readonly earlier?: Readonly<Record<string, Sources>>;
};

/**
 * Grades in a fresh worker from `spawn` and terminates it if a test (or loading) exceeds its time limit,
 * so an infinite loop in student code becomes a `timeout` result instead of a hung page or CLI. The worker
 * is always terminated at the end: every run starts from a clean global state.
 */
export function gradeWithWatchdog(
  lab: LabOutline,
  sources: Sources,
  spawn: () => WorkerPort,
  opts: WatchdogOptions = {},
): Promise<GradeReport> {
  const testLimit = opts.testTimeLimitMs ?? 3000;
  const loadLimit = opts.loadTimeLimitMs ?? 5000;
  return new Promise((resolve) => {
    const finished: TestResult[] = [];
    let running: string | null = null;
    let settled = false;
    const worker = spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (report: GradeReport) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.terminate();
      resolve(report);
    };
    const arm = (ms: number) => {
      clearTimeout(timer);
      // A timer longer than 2^31 - 1 ms fires at once: clamp (that is still about 24.8 days).
      timer = setTimeout(() => finish(timeoutReport(lab, finished, running, ms)), Math.min(ms, 2 ** 31 - 1));
    };
    worker.listen(
      (m) => {
        if (settled) return;
        if (m.type === 'start') {
          running = m.test;
          opts.onStart?.(m.test);
          // An earlier lab's test (a regression result) is not in this outline: its own limit comes along.
          arm(lab.tests.find((t) => t.id === m.test)?.timeoutMs ?? m.timeoutMs ?? testLimit);
        } else if (m.type === 'result') {
          finished.push(m.result);
          running = null;
          opts.onResult?.(m.result);
        } else if (m.type === 'done') {
          finish(m.report);
        } else {
          finish(stoppedReport(lab, finished, running, `the grading worker crashed: ${m.message}`));
        }
      },
      (message) => finish(stoppedReport(lab, finished, running, `the grading worker failed: ${message}`)),
    );
    arm(loadLimit);
    worker.post({
      type: 'grade',
      lab: lab.id,
      sources,
      ...(opts.schedules === undefined ? {} : { schedules: opts.schedules }),
      ...(opts.earlier === undefined ? {} : { earlier: opts.earlier }),
    });
  });
}
