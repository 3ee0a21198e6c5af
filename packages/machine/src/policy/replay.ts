import { ScheduleDivergenceError } from '../errors.js';
import { decodeSchedule } from '../schedule.js';
import type { Policy, SchedulerView } from './policy.js';

/**
 * Replays a recorded schedule string step by step. If the program asks for a different step than the
 * recording (a CPU that cannot run, or more steps than were recorded), the run stops with a
 * {@link ScheduleDivergenceError}: the schedule belongs to another program or configuration.
 */
export function replay(schedule: string): Policy & { readonly length: number } {
  const choices = decodeSchedule(schedule);
  return {
    name: 'replay',
    length: choices.length,
    start() {},
    choose(enabled: Int32Array, count: number, view: SchedulerView): number {
      const step = view.step;
      if (step >= choices.length) {
        throw new ScheduleDivergenceError(
          `the schedule has ${choices.length} steps but the program wants to take step ${step + 1}; it was recorded for a different program or configuration`,
        );
      }
      const c = choices[step];
      for (let i = 0; i < count; i++) if (enabled[i] === c) return c;
      throw new ScheduleDivergenceError(
        `step ${step + 1} of the schedule runs CPU ${c}, but only CPU ${Array.from(enabled.subarray(0, count)).join(', ')} can run there; the schedule was recorded for a different program or configuration`,
      );
    },
    finish(steps: number) {
      if (steps < choices.length) {
        throw new ScheduleDivergenceError(
          `the program finished after ${steps} steps but the schedule has ${choices.length}; it was recorded for a different program or configuration`,
        );
      }
    },
  };
}
