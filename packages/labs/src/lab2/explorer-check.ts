import {
  type ExploreOptions,
  explore,
  type FailureReport,
  type RunResult,
  replay,
  runScenario,
  ScheduleDivergenceError,
  type Scenario,
  timed,
  toCompactTrace,
} from '@spf/machine';
import { TestFailure } from '../lab-errors.js';
import { DebugRecorder, type ScheduleDebug } from '../schedule-debug.js';
import { studentLocation } from '../student-module.js';

/** How many trace events a failing test keeps for its timeline (the end of the run, where it failed). */
export const TIMELINE_EVENTS = 400;

/** How a concurrency test searches: an explorer policy, or one deterministic timed run. */
export type SearchMode = ExploreOptions | { readonly policy: 'timed' };

/** Options of {@link checkSchedules}. */
export type CheckOptions = {
  /**
   * Run this schedule instead of searching (the test's `ctx.schedule`, from `spf-grade --schedule` or the
   * page's debugger link): it reopens a failure found earlier.
   */
  readonly schedule?: string;
};

/**
 * Replays a failing schedule under a {@link DebugRecorder}: the trace for the timeline and the schedule
 * debugger's steps. If the recording does not follow the schedule (it always should: probes add no
 * effects), the debugger is left out rather than failing the test for it.
 */
function replayForDebugger(
  scenario: Scenario,
  schedule: string,
): { readonly run: RunResult; readonly debug?: ScheduleDebug } {
  const rec = new DebugRecorder(replay(schedule), scenario.cpus);
  const watched: Scenario = {
    ...scenario,
    setup(m) {
      rec.attach(m);
      return scenario.setup(m);
    },
  };
  try {
    const run = rec.during(() => runScenario(watched, rec, { trace: true }));
    const trace = run.trace ?? [];
    const debug = rec.result(schedule, trace);
    return { run, debug };
  } catch (err) {
    if (!(err instanceof ScheduleDivergenceError)) throw err;
    return { run: runScenario(scenario, replay(schedule), { trace: true }) };
  }
}

/**
 * Runs a concurrency scenario under the explorer (or the timed policy, or the schedule `opts.schedule`)
 * and, if any schedule fails, throws a {@link TestFailure} carrying the failing schedule, the trace of its
 * replay (the per-CPU timeline) and the schedule debugger's steps, so the course page and the CLI can
 * show it. `what` says what the scenario checks.
 */
export function checkSchedules(
  scenario: Scenario,
  mode: SearchMode,
  what: string,
  opts: CheckOptions = {},
): void {
  let failure: FailureReport | null;
  let how: string;
  if (opts.schedule !== undefined) {
    try {
      failure = runScenario(scenario, replay(opts.schedule)).failure;
    } catch (err) {
      if (!(err instanceof ScheduleDivergenceError)) throw err;
      throw new TestFailure(
        `the schedule to replay does not fit this code (${err.message}); it was found with other code: grade without a schedule to find one`,
        { schedule: opts.schedule },
      );
    }
    how = 'replaying the schedule you asked for';
  } else if (mode.policy === 'timed') {
    failure = runScenario(scenario, timed()).failure;
    how = 'the timed (discrete-event) policy';
  } else {
    const res = explore(scenario, mode);
    failure = res.failure;
    how = `${res.policy} after ${res.runs} schedule(s)`;
  }
  if (!failure) return;
  const { run, debug } = replayForDebugger(scenario, failure.schedule);
  const events = run.trace ?? [];
  const trace = toCompactTrace(events.slice(-TIMELINE_EVENTS), scenario.cpus);
  const loc = failure.stack
    ? studentLocation(Object.assign(new Error(failure.message), { stack: failure.stack }))
    : undefined;
  const where = failure.task ? ` on CPU ${failure.cpu} (${failure.task})` : '';
  throw new TestFailure(`${what}: ${failure.kind}${where}: ${failure.message} — found by ${how}`, {
    expected: what,
    actual: `${failure.kind}: ${failure.message}`,
    schedule: failure.schedule,
    trace,
    ...(debug ? { debug } : {}),
    ...(loc ? { file: loc.file, line: loc.line } : {}),
  });
}
