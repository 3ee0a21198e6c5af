import {
  type ExploreOptions,
  explore,
  type FailureReport,
  replay,
  runScenario,
  type Scenario,
  timed,
  toCompactTrace,
} from '@spf/machine';
import { TestFailure } from '../lab-errors.js';
import { studentLocation } from '../student-module.js';

/** How many trace events a failing test keeps for its timeline (the end of the run, where it failed). */
export const TIMELINE_EVENTS = 400;

/** How a concurrency test searches: an explorer policy, or one deterministic timed run. */
export type SearchMode = ExploreOptions | { readonly policy: 'timed' };

/**
 * Runs a concurrency scenario under the explorer (or the timed policy) and, if any schedule fails, throws
 * a {@link TestFailure} carrying the failing schedule and the trace of its replay, so the course page can
 * draw a per-CPU timeline and the CLI can print the schedule. `what` says what the scenario checks.
 */
export function checkSchedules(scenario: Scenario, mode: SearchMode, what: string): void {
  let failure: FailureReport | null;
  let how: string;
  if (mode.policy === 'timed') {
    failure = runScenario(scenario, timed()).failure;
    how = 'the timed (discrete-event) policy';
  } else {
    const res = explore(scenario, mode);
    failure = res.failure;
    how = `${res.policy} after ${res.runs} schedule(s)`;
  }
  if (!failure) return;
  const replayed = runScenario(scenario, replay(failure.schedule), { trace: true });
  const events = replayed.trace ?? [];
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
    ...(loc ? { file: loc.file, line: loc.line } : {}),
  });
}
