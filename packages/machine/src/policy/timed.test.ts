import { describe, expect, it } from 'vitest';
import { AtomicCell } from '../cell.js';
import { delay, type Kernel } from '../effects.js';
import { replaySchedule, runScenario, runTimed, type Scenario } from '../explore.js';
import { Machine } from '../machine.js';
import { counterScenario } from '../test-support/scenarios.js';
import type { Policy } from './policy.js';
import { timed } from './timed.js';

/** Four CPUs that do the same work on one shared counter: who goes first is a tie at every round. */
function contended(machineSeed?: number): Scenario {
  return {
    cpus: 4,
    machineSeed,
    setup(m) {
      const counter = new AtomicCell(0, 'counter');
      for (let i = 0; i < 4; i++) {
        m.spawn(i, `t${i}`, function* (): Kernel<void> {
          for (let k = 0; k < 3; k++) {
            yield* counter.fetchAdd(1);
            yield* delay(100);
          }
        });
      }
    },
  };
}

describe('timed policy: the machine seed varies the run', () => {
  it('seed 0 is the default run, exactly', () => {
    const dflt = runTimed(contended());
    const zero = runTimed(contended(0));
    expect(zero.traceHash).toBe(dflt.traceHash);
    expect(zero.time).toBe(dflt.time);
    expect(zero.schedule).toBe(dflt.schedule);
  });

  it('other seeds give different runs, each reproducible from its seed', () => {
    const base = runTimed(contended(0));
    const hashes = new Set<string>();
    const times = new Set<number>();
    for (let seed = 1; seed <= 8; seed++) {
      const a = runTimed(contended(seed));
      const b = runTimed(contended(seed));
      expect(a.ok).toBe(true);
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.time).toBe(a.time);
      expect(b.schedule).toBe(a.schedule);
      hashes.add(a.traceHash);
      times.add(a.time);
    }
    expect(hashes.has(base.traceHash)).toBe(false);
    expect(hashes.size).toBeGreaterThanOrEqual(6);
    // The jitter is small: every seeded run ends within 1/8 of the unvaried run's time of it.
    for (const t of times) expect(Math.abs(t - base.time)).toBeLessThanOrEqual(base.time / 8);
    expect(times.size).toBeGreaterThan(1);
  });

  it('the seed breaks ties between CPUs ready at the same time', () => {
    // No memory access misses the L1 here, so only the tie-break can differ: each CPU only delays.
    const firsts = new Set<number>();
    for (let seed = 0; seed < 16; seed++) {
      const m = new Machine({ cpus: 4, seed, policy: timed() });
      const order: number[] = [];
      for (let i = 0; i < 4; i++) {
        m.spawn(i, `t${i}`, function* () {
          yield* delay(100);
          order.push(i);
        });
      }
      expect(m.run().ok).toBe(true);
      if (seed === 0) expect(order).toEqual([0, 1, 2, 3]);
      firsts.add(order[0]);
    }
    expect(firsts.size).toBeGreaterThan(1);
  });

  it('replaying the schedule of a seeded run with the same seed reproduces it exactly', () => {
    const scenario = { ...counterScenario(true, 4, 5), machineSeed: 12345 };
    const a = runTimed(scenario);
    const b = replaySchedule(scenario, a.schedule);
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.time).toBe(a.time);
    // ...and it is not the unvaried run.
    expect(runScenario({ ...scenario, machineSeed: 0 }, timed()).traceHash).not.toBe(a.traceHash);
  });

  it('choose() is the unvaried rule: the earliest ready CPU, ties to the lowest id', () => {
    const ready = [50, 20, 20, 10, 5];
    const view = {
      cpuCount: 5,
      step: 0,
      lastCpu: -1,
      clock: () => 0,
      readyAt: (c: number) => ready[c],
      isSpinning: () => false,
    };
    const p = timed();
    expect(p.name).toBe('timed');
    expect(p.discreteEvent).toBe(true);
    // CPU 4 (ready at 5) lies past `count`: the machine passes a buffer with stale ids at its end.
    const enabled = Int32Array.from([0, 1, 2, 3, 4]);
    expect(p.choose(enabled, 4, view)).toBe(3);
    expect(p.choose(enabled, 3, view)).toBe(1); // 1 and 2 tie: the lower id
    expect(p.choose(Int32Array.from([2, 1]), 2, view)).toBe(2); // the first listed wins a tie
    expect(p.choose(Int32Array.from([0, 2]), 2, view)).toBe(2);
    expect(p.choose(Int32Array.from([0]), 1, view)).toBe(0);
  });

  it("choose() picks the same CPUs as the machine's ready heap for an unvaried run", () => {
    // The same policy without the discreteEvent flag makes the machine call choose() at every step.
    const viaChoose: Policy = { name: 'timed', start() {}, choose: timed().choose };
    const scenario = counterScenario(true, 4, 5);
    const heap = runTimed(scenario);
    const chosen = runScenario(scenario, viaChoose);
    expect(chosen.ok).toBe(true);
    expect(chosen.schedule).toBe(heap.schedule);
    expect(chosen.time).toBe(heap.time);
    expect(chosen.traceHash).toBe(heap.traceHash);
    const c = runScenario(contended(), viaChoose);
    const h = runTimed(contended());
    expect(c.schedule).toBe(h.schedule);
  });
});
