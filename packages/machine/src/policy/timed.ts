import type { Policy, SchedulerView } from './policy.js';

/**
 * Discrete-event policy for benchmarks: the enabled CPU whose next step can begin earliest steps next, ties
 * broken by the lowest CPU id. Fully deterministic; the seed plays no part.
 */
export function timed(): Policy {
  return {
    name: 'timed',
    discreteEvent: true,
    start() {},
    choose(enabled: Int32Array, count: number, view: SchedulerView): number {
      let best = enabled[0];
      let bestClock = view.readyAt(best);
      for (let i = 1; i < count; i++) {
        const c = enabled[i];
        const t = view.readyAt(c);
        if (t < bestClock) {
          best = c;
          bestClock = t;
        }
      }
      return best;
    },
  };
}
