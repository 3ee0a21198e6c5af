import { afterEach, describe, expect, it, vi } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import { cpuRelax, delay, type Kernel, readEffect, sendIpi, spinWaitEffect, write } from './effects.js';
import { kassert } from './errors.js';
import { runScenario, type Scenario } from './explore.js';
import { MemoryLine } from './memory-line.js';
import { runFingerprint } from './policy-fingerprint.js';
import { timed } from './policy/timed.js';
import { Prng } from './prng.js';
import { SpinRing } from './spin-ring.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Steps entries of (time, rank) with periods `period` in the timed policy's order, by brute force. */
function bruteOrder(
  entries: Array<{ cpu: number; t: number }>,
  rank: Int32Array,
  period: number,
  steps: number,
) {
  const e = entries.map((x) => ({ ...x }));
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    let best = 0;
    for (let i = 1; i < e.length; i++) {
      const a = e[i];
      const b = e[best];
      if (a.t < b.t || (a.t === b.t && rank[a.cpu] < rank[b.cpu])) best = i;
    }
    out.push(e[best].cpu);
    e[best].t += period;
  }
  return out;
}

describe('SpinRing: the rotation of steady spinners', () => {
  it('steps its CPUs in exactly the order of the earliest (time, then rank), ties included', () => {
    const prng = new Prng(7);
    for (let trial = 0; trial < 200; trial++) {
      const cpus = 2 + prng.below(10);
      const rank = Int32Array.from({ length: cpus }, (_, i) => i);
      for (let i = cpus - 1; i > 0; i--) {
        const j = prng.below(i + 1);
        [rank[i], rank[j]] = [rank[j], rank[i]];
      }
      const pause = 1 + prng.below(40);
      const hit = 1 + prng.below(3);
      const period = pause + hit;
      const ring = new SpinRing(cpus, rank, period);
      const entries: Array<{ cpu: number; t: number }> = [];
      const base = 1000;
      for (let c = 0; c < cpus; c++) {
        // Phases within one period (many equal times, so the rank decides), either step first.
        const first = base + prng.below(4);
        const second = first + (prng.below(2) === 0 ? pause : hit);
        if (ring.tryAdd(c, first, second)) entries.push({ cpu: c, t: first }, { cpu: c, t: second });
        else expect(ring.has(c)).toBe(false);
      }
      const got: number[] = [];
      for (let s = 0; s < 5 * entries.length; s++) {
        got.push(ring.headCpu());
        ring.advance();
      }
      expect(got).toEqual(bruteOrder(entries, rank, period, 5 * entries.length));
    }
  });

  it('refuses a CPU whose steps would not keep the rotation, and forgets removed CPUs', () => {
    const rank = Int32Array.from({ length: 4 }, (_, i) => i);
    const ring = new SpinRing(4, rank, 36);
    expect(ring.tryAdd(0, 100, 135)).toBe(true);
    // 100 + 36 = 136: a step at 136 by CPU 1 (rank 1) comes after CPU 0's next one at (136, 0): not a rotation.
    expect(ring.tryAdd(1, 101, 136)).toBe(false);
    expect(ring.has(1)).toBe(false);
    // Equal time, lower rank than the earliest plus one period: (135, 2) < (136, 0).
    expect(ring.tryAdd(2, 100, 135)).toBe(true);
    expect(ring.size).toBe(4);
    expect([ring.headCpu(), ring.headTime()]).toEqual([0, 100]);
    ring.advance();
    expect([ring.headCpu(), ring.headTime()]).toEqual([2, 100]);
    ring.remove(0);
    expect(ring.has(0)).toBe(false);
    expect(ring.size).toBe(2);
    expect([ring.headCpu(), ring.headTime()]).toEqual([2, 100]);
    expect(ring.removeWhere((c) => c === 2)).toEqual([2]);
    expect(ring.size).toBe(0);
  });
});

/**
 * `cpus` CPUs take a ticket lock `rounds` times, their waiters spinning with the plain loop or with the pure
 * spin-wait (`until`: the exit condition stated). CPU 0 sends IPIs to spinning CPUs now and then; with
 * `shared`, CPU 1 runs a second task (the tick preempts its spinners).
 */
function contended(
  style: 'plain' | 'pure' | 'until',
  cpus: number,
  rounds: number,
  shared: boolean,
): Scenario {
  return {
    cpus,
    cost: shared ? { tick: 2000 } : undefined,
    setup(m) {
      const line = new MemoryLine('ticket');
      const next = new AtomicCell(0, line);
      const head = new Cell(0, line);
      const data = new AtomicCell(0, 'data');
      const other = new MemoryLine('other');
      const body = (i: number) =>
        function* (): Kernel<void> {
          for (let r = 0; r < rounds; r++) {
            const ticket = yield* next.fetchAdd(1);
            if (style === 'plain') {
              while ((yield* head.load()) !== ticket) yield* cpuRelax('ticket');
            } else {
              const served = () => head.value === ticket;
              const wait = spinWaitEffect(line, 'ticket', undefined, style === 'until' ? served : undefined);
              yield readEffect(line);
              while (!served()) yield wait;
            }
            const v = yield* data.load();
            yield* delay(30 + 7 * i);
            if (i === 0 && r % 2 === 1) {
              // An IPI to every other CPU, most of them spinning: each leaves its steady spin to take it.
              yield* sendIpi(
                Array.from({ length: cpus - 1 }, (_, k) => k + 1),
                function* () {
                  yield* write(other);
                },
                r % 4 === 1,
              );
            }
            yield* data.store(v + 1);
            yield* head.store(ticket + 1);
            yield* delay(5 * ((i * 7 + r) % 5));
          }
        };
      for (let i = 0; i < cpus; i++) m.spawn(i, `t${i}`, body(i));
      if (shared) m.spawn(1, 'second', body(cpus));
      const total = (cpus + (shared ? 1 : 0)) * rounds;
      return () => kassert(data.value === total, `data is ${data.value}`);
    },
  };
}

describe('the spin ring under the timed policy', () => {
  it('gives the plain loop’s trace hash, time, steps and schedule, with many spinners, seeds, IPIs and the tick', () => {
    const advance = vi.spyOn(SpinRing.prototype, 'advance');
    for (const [cpus, rounds, shared] of [
      [4, 4, false],
      [16, 3, false],
      [33, 2, true],
    ] as const) {
      for (const machineSeed of [0, 1, 99]) {
        const fp = (style: 'plain' | 'pure' | 'until') =>
          runFingerprint(runScenario({ ...contended(style, cpus, rounds, shared), machineSeed }, timed()));
        const plain = fp('plain');
        expect(plain).toMatch(/ ok$/);
        advance.mockClear();
        expect(fp('pure')).toBe(plain);
        expect(fp('until')).toBe(plain);
        // The steady spinners were stepped from the ring, not the heap.
        expect(advance.mock.calls.length).toBeGreaterThan(cpus * 4);
      }
    }
  });

  it('a run with every CPU spinning forever on the ring still ends with spin-forever', () => {
    const r = runScenario(
      {
        cpus: 8,
        setup(m) {
          const flag = new Cell(0, 'flag');
          for (let i = 0; i < 8; i++) {
            m.spawn(i, `w${i}`, function* () {
              const wait = spinWaitEffect(flag.line, 'flag', undefined, () => flag.value === 1);
              yield readEffect(flag.line);
              while (flag.value === 0) yield wait;
            });
          }
        },
      },
      timed(),
    );
    expect(r.failure?.kind).toBe('spin-forever');
  });
});
