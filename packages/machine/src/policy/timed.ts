import type { Policy, SchedulerView } from './policy.js';

/**
 * Discrete-event policy for benchmarks: the enabled CPU whose next step can begin earliest steps next.
 *
 * The machine's seed varies the run, so that an experiment repeated over seeds has a spread:
 * - seed 0 (the default): ties go to the lowest CPU id and every latency is the cost model's; this is the
 *   run the engine has always made.
 * - any other seed: ties go by a seeded permutation of the CPU ids, and every memory access that is not an
 *   L1 hit takes a uniform 0 to 1/8 of its latency longer (integer ns, e.g. 0–7 ns on a 60 ns transfer), drawn
 *   from a PRNG seeded by the machine's seed in the order accesses are performed (the jitter applies under
 *   every policy, so replaying the schedule of a varied run with the same seed reproduces it exactly).
 * Either way the run is a pure function of the configuration and the seed. (`choose` below is the
 * unvaried rule; the machine applies the seeded one in its ready heap.)
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
