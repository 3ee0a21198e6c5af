import {
  describeExploreFailure,
  type ExploreOptions,
  type ExploreResult,
  explore,
  replaySchedule,
  type Scenario,
} from './explore.js';
import { formatFailure } from './failure.js';

/** Environment variable that makes {@link exploreInTest} replay one schedule instead of exploring. */
export const REPLAY_ENV = 'SPF_REPLAY';

/** Thrown by {@link exploreInTest} when a schedule fails; its message holds the report and replay command. */
export class ExplorationFailure extends Error {
  override readonly name = 'ExplorationFailure';
}

/**
 * Explores a scenario inside a test and throws {@link ExplorationFailure} with the full report and the
 * command that replays the failing schedule. With `SPF_REPLAY=<schedule>` in the environment it replays
 * that one schedule instead (with a trace), so a failure can be stepped through.
 *
 * `testName` is used in the printed command (`vitest run -t '<testName>'`).
 */
export function exploreInTest(scenario: Scenario, opts: ExploreOptions, testName?: string): ExploreResult {
  const env = typeof process !== 'undefined' ? process.env[REPLAY_ENV] : undefined;
  if (env) {
    const res = replaySchedule(scenario, env, { trace: true });
    if (res.failure) throw new ExplorationFailure(`replayed schedule failed:\n${formatFailure(res.failure)}`);
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
