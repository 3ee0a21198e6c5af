import { describe, expect, it } from 'vitest';
import { ScheduleDivergenceError } from '../errors.js';
import { encodeSchedule } from '../schedule.js';
import type { SchedulerView } from './policy.js';
import { replay } from './replay.js';

function viewAt(step: number): SchedulerView {
  return { cpuCount: 4, step, lastCpu: -1, clock: () => 0, readyAt: () => 0, isSpinning: () => false };
}

describe('replay policy', () => {
  it('is named replay and knows the length of its schedule', () => {
    const p = replay(encodeSchedule([0, 1, 1, 2]));
    expect(p.name).toBe('replay');
    expect(p.length).toBe(4);
  });

  it('runs the recorded CPU at each step', () => {
    const steps = [2, 0, 0, 1, 3, 2];
    const p = replay(encodeSchedule(steps));
    p.start(viewAt(0));
    const all = Int32Array.from([0, 1, 2, 3]);
    expect(steps.map((_, i) => p.choose(all, 4, viewAt(i)))).toEqual(steps);
    expect(() => p.finish?.(steps.length)).not.toThrow();
  });

  it('stops with a divergence error when the recorded CPU cannot run, naming the ones that can', () => {
    const p = replay(encodeSchedule([0, 3]));
    // CPU 3 sits past `count`: it is not enabled.
    const e = () => p.choose(Int32Array.from([0, 1, 3]), 2, viewAt(1));
    expect(e).toThrow(ScheduleDivergenceError);
    expect(e).toThrow(/^step 2 of the schedule runs CPU 3, but only CPU 0, 1 can run there; /);
  });

  it('stops when the program wants more steps than were recorded', () => {
    const p = replay(encodeSchedule([0, 1]));
    const all = Int32Array.from([0, 1]);
    expect(p.choose(all, 2, viewAt(1))).toBe(1);
    expect(() => p.choose(all, 2, viewAt(2))).toThrow(
      /^the schedule has 2 steps but the program wants to take step 3; /,
    );
  });

  it('stops when the program finishes before the schedule does', () => {
    const p = replay(encodeSchedule([0, 1, 0]));
    expect(() => p.finish?.(2)).toThrow(ScheduleDivergenceError);
    expect(() => p.finish?.(2)).toThrow(/^the program finished after 2 steps but the schedule has 3; /);
    expect(() => p.finish?.(3)).not.toThrow();
  });
});
