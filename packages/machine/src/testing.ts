import {
  describeExploreFailure,
  type ExploreOptions,
  type ExploreResult,
  explore,
  replaySchedule,
  type Scenario,
} from './explore.js';
import { formatFailure } from './failure.js';
import type { TraceEvent } from './trace.js';

/** Environment variable that makes {@link exploreInTest} replay one schedule instead of exploring. */
export const REPLAY_ENV = 'SPF_REPLAY';

/** How many of a replayed run's last trace events the message of its {@link ExplorationFailure} shows. */
const REPLAY_TRACE_EVENTS = 200;

/**
 * Thrown by {@link exploreInTest} when a schedule fails; its message holds the report and replay command, or,
 * for a schedule replayed through `SPF_REPLAY`, the report and the replayed run's trace.
 */
export class ExplorationFailure extends Error {
  override readonly name = 'ExplorationFailure';
  constructor(
    message: string,
    /** The replayed run's trace (every step it performed), when the failure came from `SPF_REPLAY`; else null. */
    readonly trace: readonly TraceEvent[] | null = null,
  ) {
    super(message);
  }
}

/** The last `REPLAY_TRACE_EVENTS` events of a replayed run, one line per step, for the failure message. */
function describeTrace(trace: readonly TraceEvent[]): string {
  const shown = trace.slice(-REPLAY_TRACE_EVENTS);
  const left = trace.length - shown.length;
  const lines = [
    left > 0
      ? `  trace (the last ${shown.length} of ${trace.length} steps; the error's \`trace\` holds them all):`
      : `  trace (${trace.length} steps):`,
  ];
  for (const e of shown)
    lines.push(`    #${e.step} CPU ${e.cpu} t=${e.time}ns ${e.task}: ${e.kind} ${e.label}`.trimEnd());
  return lines.join('\n');
}

/**
 * Explores a scenario inside a test and throws {@link ExplorationFailure} with the full report and the
 * command that replays the failing schedule. With `SPF_REPLAY=<schedule>` in the environment it replays
 * that one schedule instead, with a trace: if the replayed run fails, the message also lists its last 200
 * steps (step, CPU, time, task, effect) and the error's `trace` holds every step, so the failure can be
 * stepped through.
 *
 * `testName` is used in the printed command (`vitest run -t '<testName>'`).
 */
export function exploreInTest(scenario: Scenario, opts: ExploreOptions, testName?: string): ExploreResult {
  const env = typeof process !== 'undefined' ? process.env[REPLAY_ENV] : undefined;
  if (env) {
    const res = replaySchedule(scenario, env, { trace: true });
    if (res.failure) {
      const trace = res.trace!; // recorded: the replay runs with the trace on
      throw new ExplorationFailure(
        `replayed schedule failed:\n${formatFailure(res.failure)}\n${describeTrace(trace)}`,
        trace,
      );
    }
    return { policy: 'replay', runs: 1, exhausted: false, failure: null, maxSteps: res.steps };
  }
  const res = explore(scenario, opts);
  if (res.failure) {
    const name = testName ?? scenario.name ?? '<test name>';
    const hint = `${REPLAY_ENV}='${res.failure.schedule}' npx vitest run -t ${JSON.stringify(name)}`;
    throw new ExplorationFailure(describeExploreFailure(res, hint));
  }
  return res;
}
