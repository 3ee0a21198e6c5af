import { describe, expect, it } from 'vitest';
import { MachineConfigError } from '../errors.js';
import type { SchedulerView } from './policy.js';
import { checkSeed, random } from './random.js';

const view: SchedulerView = {
  cpuCount: 8,
  step: 0,
  lastCpu: -1,
  clock: () => 0,
  readyAt: () => 0,
  isSpinning: () => false,
};

describe('random policy', () => {
  it('names its seed', () => {
    expect(random(7).name).toBe('random(seed=7)');
  });

  it('picks only enabled CPUs, each about equally often', () => {
    const p = random(3);
    p.start(view);
    const enabled = Int32Array.from([2, 5, 7, 1]);
    const counts = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const c = p.choose(enabled, 3, view);
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    // CPU 1 is past `count`: not enabled.
    expect([...counts.keys()].sort()).toEqual([2, 5, 7]);
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
  });

  it('start() restarts the same sequence, so a seed reproduces its schedule', () => {
    const p = random(11);
    const enabled = Int32Array.from([0, 1, 2, 3]);
    const run = () => {
      p.start(view);
      return Array.from({ length: 40 }, () => p.choose(enabled, 4, view));
    };
    const first = run();
    expect(run()).toEqual(first);
    expect(new Set(first).size).toBe(4);
    const q = random(12);
    q.start(view);
    expect(Array.from({ length: 40 }, () => q.choose(enabled, 4, view))).not.toEqual(first);
  });

  it('a step with one enabled CPU draws nothing: the other choices are those of a run without it', () => {
    const enabled = Int32Array.from([0, 1, 2, 3]);
    const p = random(5);
    p.start(view);
    const plain = Array.from({ length: 20 }, () => p.choose(enabled, 4, view));
    p.start(view);
    const mixed: number[] = [];
    for (let i = 0; i < 20; i++) {
      expect(p.choose(Int32Array.from([3]), 1, view)).toBe(3);
      mixed.push(p.choose(enabled, 4, view));
    }
    expect(mixed).toEqual(plain);
  });
});

describe('checkSeed', () => {
  it('accepts the integers from 0 to 2^32 - 1', () => {
    for (const s of [0, 1, 0xffffffff]) expect(() => checkSeed(s)).not.toThrow();
  });

  it('rejects anything else with a typed error saying what was wrong', () => {
    for (const s of [-1, 2 ** 32, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null]) {
      expect(() => checkSeed(s)).toThrow(MachineConfigError);
    }
    expect(() => checkSeed(-1)).toThrow('a seed must be an integer in [0, 2^32), got -1');
    expect(() => random(2 ** 32)).toThrow(MachineConfigError);
  });
});
