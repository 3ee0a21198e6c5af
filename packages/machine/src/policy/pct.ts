import { MachineConfigError } from '../errors.js';
import { Prng } from '../prng.js';
import type { Policy, SchedulerView } from './policy.js';
import { checkSeed } from './random.js';

/**
 * Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010). Each CPU
 * gets a random distinct priority above `depth`; `depth - 1` change points are drawn uniformly from the
 * expected run length `steps`; the enabled CPU with the highest priority always runs, and when the run
 * reaches the i-th change point the running CPU's priority drops to `depth - i`. A bug of depth `d` is
 * found in one run with probability at least 1/(n * k^(d-1)).
 *
 * A CPU whose next step is a spin-wait iteration is treated as yielding: its priority drops below every
 * other CPU's, so a high-priority spinner cannot starve the CPU it waits for (the usual PCT refinement for
 * spin loops).
 */
export function pct(seed: number, depth = 3, steps = 100): Policy {
  checkSeed(seed);
  if (!Number.isInteger(depth) || depth < 1)
    throw new MachineConfigError(`pct depth must be an integer >= 1, got ${depth}`);
  if (!Number.isInteger(steps) || steps < 1)
    throw new MachineConfigError(`pct steps must be an integer >= 1, got ${steps}`);
  let prio = new Float64Array(0);
  let changeAt: number[] = [];
  let low = 0;
  const policy: Policy & { steps: number } = {
    name: `pct(seed=${seed},depth=${depth})`,
    steps,
    start(view: SchedulerView) {
      const rng = new Prng(seed);
      const n = view.cpuCount;
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      prio = new Float64Array(n);
      for (let i = 0; i < n; i++) prio[order[i]] = depth + i;
      changeAt = [];
      for (let i = 1; i < depth; i++) changeAt.push(1 + rng.below(policy.steps));
      low = 0;
    },
    choose(enabled: Int32Array, count: number, view: SchedulerView): number {
      let best = -1;
      let bestP = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < count; i++) {
        const c = enabled[i];
        if (view.isSpinning(c) && count > 1 && c === view.lastCpu) prio[c] = --low - depth;
        if (prio[c] > bestP) {
          bestP = prio[c];
          best = c;
        }
      }
      for (let i = 0; i < changeAt.length; i++) {
        if (changeAt[i] === view.step) prio[best] = depth - 1 - i;
      }
      return best;
    },
  };
  return policy;
}
