import { describe, expect, it } from 'vitest';
import { MachineConfigError } from '../errors.js';
import { DfsExplorer } from './dfs.js';
import type { SchedulerView } from './policy.js';

/**
 * A stand-in machine for the explorer: CPU i has `lengths[i]` steps to take, and `spins(cpu, done)` says
 * whether its next step (after `done` steps) is a spin-wait iteration. The enabled CPUs are passed the way
 * the machine passes them: in increasing order, in a buffer longer than `count` whose tail holds stale ids.
 */
type Toy = { lengths: number[]; spins?: (cpu: number, done: number) => boolean };

/** Every schedule the explorer produces, in order, as strings of CPU ids. */
function explored(toy: Toy, bound: number): { schedules: string[]; runs: number; names: string[] } {
  const ex = new DfsExplorer(bound);
  const schedules: string[] = [];
  const names: string[] = [];
  const spins = toy.spins ?? (() => false);
  for (let policy = ex.nextRun(); policy !== null; policy = ex.nextRun()) {
    names.push(policy.name);
    const n = toy.lengths.length;
    const done = new Array<number>(n).fill(0);
    const view = {
      cpuCount: n,
      step: 0,
      lastCpu: -1,
      clock: () => 0,
      readyAt: () => 0,
      isSpinning: (c: number) => spins(c, done[c]),
    } satisfies SchedulerView;
    policy.start(view);
    let s = '';
    const buf = new Int32Array(n + 2).fill(n - 1); // stale entries past `count`
    for (;;) {
      let count = 0;
      for (let c = 0; c < n; c++) if (done[c] < toy.lengths[c]) buf[count++] = c;
      if (count === 0) break;
      const c = policy.choose(buf, count, view);
      expect(done[c]).toBeLessThan(toy.lengths[c]);
      s += c;
      done[c]++;
      view.step++;
      view.lastCpu = c;
    }
    schedules.push(s);
  }
  // Exhausted for good.
  expect(ex.nextRun()).toBe(null);
  return { schedules, runs: ex.runs, names };
}

/**
 * Reference: every complete schedule in which a spin-waiting CPU runs only when every enabled CPU spins,
 * with at most `bound` preemptions (a switch away from the previous CPU while it could still run a
 * non-spinning step).
 */
function expected(toy: Toy, bound: number): string[] {
  const spins = toy.spins ?? (() => false);
  const n = toy.lengths.length;
  const out: string[] = [];
  const done = new Array<number>(n).fill(0);
  const walk = (prefix: string, prev: number, used: number): void => {
    const enabled = [...Array(n).keys()].filter((c) => done[c] < toy.lengths[c]);
    if (enabled.length === 0) {
      out.push(prefix);
      return;
    }
    const quiet = enabled.filter((c) => !spins(c, done[c]));
    const candidates = quiet.length === 0 ? enabled : quiet;
    const prevRunnable = candidates.includes(prev) && !spins(prev, done[prev]);
    for (const c of candidates) {
      const u = used + (prevRunnable && c !== prev ? 1 : 0);
      if (u > bound) continue;
      done[c]++;
      walk(prefix + c, c, u);
      done[c]--;
    }
  };
  walk('', -1, 0);
  return out;
}

describe('DfsExplorer: every schedule within the preemption bound, each once', () => {
  it('rejects a bound that is not an integer >= 0', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new DfsExplorer(bad)).toThrow(MachineConfigError);
      expect(() => new DfsExplorer(bad)).toThrow(
        `the dfs preemption bound must be an integer >= 0, got ${bad}`,
      );
    }
    expect(new DfsExplorer(0).bound).toBe(0);
  });

  it('bound 0: each CPU runs to its end; a switch is free only when the previous CPU is done', () => {
    const r = explored({ lengths: [2, 2, 1] }, 0);
    // The default choice keeps the previous CPU, then takes the next id after it, wrapping to the lowest.
    // Backtracking revisits the latest choice first.
    expect(r.schedules).toEqual(['00112', '00211', '11200', '11002', '20011', '21100']);
    expect(new Set(r.schedules)).toEqual(new Set(expected({ lengths: [2, 2, 1] }, 0)));
    expect(r.schedules).toHaveLength(6);
    expect(r.runs).toBe(6);
    expect(r.names).toEqual(new Array(6).fill('dfs(bound=0)'));
  });

  it('the first schedule follows the default choice, wrapping to the lowest id', () => {
    expect(explored({ lengths: [1, 1, 1] }, 0).schedules[0]).toBe('012');
    // Backtracking to CPU 2 first: after it, the next CPU "after 2" wraps round to CPU 0.
    expect(explored({ lengths: [1, 1, 1] }, 0).schedules).toEqual(['012', '021', '120', '102', '201', '210']);
  });

  for (const bound of [0, 1, 2, 3]) {
    it(`bound ${bound}: exactly the schedules with at most ${bound} preemptions, none twice`, () => {
      for (const lengths of [
        [3, 2],
        [2, 2, 2],
        [1, 3, 1],
      ]) {
        const r = explored({ lengths }, bound);
        const want = expected({ lengths }, bound);
        expect(r.schedules.length).toBe(new Set(r.schedules).size);
        expect([...r.schedules].sort()).toEqual([...want].sort());
        expect(r.runs).toBe(want.length);
      }
    });
  }

  it('grows with the bound up to every interleaving', () => {
    const counts = [0, 1, 2, 3, 4].map((b) => explored({ lengths: [2, 2] }, b).runs);
    expect(counts).toEqual([2, 4, 6, 6, 6]); // C(4,2) = 6 interleavings in all
  });

  it('leaves out exactly the spinning CPUs when some spin and others can run', () => {
    const toys: Toy[] = [
      { lengths: [2, 2, 2], spins: (c, done) => c === 2 && done < 2 }, // one spinner, two runnable
      { lengths: [3, 2, 2], spins: (c, done) => c === 0 && done > 0 && done < 3 }, // CPU 0 spins after a step
      { lengths: [2, 2, 2], spins: (c, done) => c > 0 && done < 1 }, // two spinners, one runnable
    ];
    for (const toy of toys) {
      for (const bound of [0, 1, 2]) {
        const r = explored(toy, bound);
        expect([...r.schedules].sort()).toEqual([...expected(toy, bound)].sort());
      }
    }
  });

  it('runs a spin-waiting CPU only when every enabled CPU spins, and switching away from it is free', () => {
    // CPU 1's first two steps spin; CPU 0 has plain steps.
    const toy: Toy = { lengths: [2, 3], spins: (c, done) => c === 1 && done < 2 };
    const r = explored(toy, 0);
    const want = expected(toy, 0);
    expect([...r.schedules].sort()).toEqual([...want].sort());
    for (const s of r.schedules) expect(s.startsWith('00')).toBe(true); // CPU 1 spins while CPU 0 can run
    // Every CPU spinning: any of them may run, and leaving a spinner costs nothing.
    const all: Toy = { lengths: [3, 3], spins: (_c, done) => done < 2 };
    const ra = explored(all, 0);
    expect([...ra.schedules].sort()).toEqual([...expected(all, 0)].sort());
    expect(ra.schedules).toContain('010011'); // switching between spinners costs nothing
    // When every CPU spins, the default choice moves on to the next CPU after the previous one.
    expect(ra.schedules[0]).toBe('010011');
    for (const b of [1, 2]) {
      const rb = explored(toy, b);
      expect([...rb.schedules].sort()).toEqual([...expected(toy, b)].sort());
    }
  });
});
