import { MachineConfigError } from '../errors.js';
import type { Policy, SchedulerView } from './policy.js';

type Frame = {
  readonly enabled: Int32Array;
  /** CPUs already explored at this step. */
  readonly tried: Set<number>;
  chosen: number;
  /** CPU of the previous step and whether switching away from it here costs a preemption. */
  readonly prev: number;
  readonly prevRunnable: boolean;
  /** Preemptions used before this step. */
  readonly before: number;
};

/**
 * Systematic exploration bounded by the number of preemptions (iterative context bounding, Musuvathi and
 * Qadeer, PLDI 2007, as in CHESS). A switch away from a CPU that could have continued costs one preemption;
 * a switch forced by a CPU blocking, finishing or spin-waiting (a yield) is free, and a spin-waiting CPU is
 * only chosen when every enabled CPU spins. Each call to
 * {@link DfsExplorer.nextRun} returns the policy for the next unexplored schedule, until the bounded tree
 * is exhausted. Stateless: every run replays a prefix from the start.
 */
export class DfsExplorer {
  private frames: Frame[] = [];
  private first = true;
  /** Schedules started so far. */
  runs = 0;
  constructor(readonly bound: number) {
    if (!Number.isInteger(bound) || bound < 0) {
      throw new MachineConfigError(`the dfs preemption bound must be an integer >= 0, got ${bound}`);
    }
  }

  /** The policy for the next schedule, or null when every schedule within the bound has been explored. */
  nextRun(): Policy | null {
    if (!this.first && !this.backtrack()) return null;
    this.first = false;
    this.runs++;
    const frames = this.frames;
    const bound = this.bound;
    let used = 0;
    return {
      name: `dfs(bound=${bound})`,
      start() {
        used = 0;
      },
      choose(enabled: Int32Array, count: number, view: SchedulerView): number {
        const step = view.step;
        const prev = view.lastCpu;
        // A CPU whose next step is a spin-wait iteration changes nothing another CPU can observe: it is only
        // worth running when every enabled CPU spins (CHESS's fair scheduling of yielding threads). Without
        // this rule dfs would spend its budget on ever longer spin sequences.
        const candidates = nonSpinning(enabled, count, view);
        const n = candidates.length;
        let prevRunnable = false;
        for (let i = 0; i < n; i++) if (candidates[i] === prev) prevRunnable = !view.isSpinning(prev);
        let c: number;
        if (step < frames.length) {
          c = frames[step].chosen;
        } else {
          c = defaultChoice(candidates, n, prev, prevRunnable);
          frames.push({
            enabled: candidates,
            tried: new Set([c]),
            chosen: c,
            prev,
            prevRunnable,
            before: used,
          });
        }
        if (prevRunnable && c !== prev) used++;
        return c;
      },
    };
  }

  private backtrack(): boolean {
    const frames = this.frames;
    for (let i = frames.length - 1; i >= 0; i--) {
      const f = frames[i];
      for (const c of f.enabled) {
        if (f.tried.has(c)) continue;
        const cost = f.prevRunnable && c !== f.prev ? 1 : 0;
        if (f.before + cost > this.bound) continue;
        f.tried.add(c);
        f.chosen = c;
        frames.length = i + 1;
        return true;
      }
    }
    return false;
  }
}

/** The enabled CPUs that are not spin-waiting, or all of them if every one spins. */
function nonSpinning(enabled: Int32Array, count: number, view: SchedulerView): Int32Array {
  let k = 0;
  for (let i = 0; i < count; i++) if (!view.isSpinning(enabled[i])) k++;
  if (k === 0 || k === count) return enabled.slice(0, count);
  const out = new Int32Array(k);
  k = 0;
  for (let i = 0; i < count; i++) if (!view.isSpinning(enabled[i])) out[k++] = enabled[i];
  return out;
}

/** Keep running the previous CPU if it can run; otherwise take the next CPU after it in id order. */
function defaultChoice(enabled: Int32Array, count: number, prev: number, prevRunnable: boolean): number {
  if (prevRunnable) return prev;
  for (let i = 0; i < count; i++) if (enabled[i] > prev) return enabled[i];
  return enabled[0];
}
