import { describe, expect, it } from 'vitest';
import { SpinRing } from './spin-ring.js';

/** A tiny deterministic generator (xorshift32) so every case is reproducible from its seed. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

interface Entry {
  cpu: number;
  rank: number;
  time: number;
}

/** The order the ready heap gives: earliest start, ties by rank. */
function less(a: Entry, b: Entry): boolean {
  return a.time < b.time || (a.time === b.time && a.rank < b.rank);
}

/**
 * Drives a SpinRing and a plain sorted model (what the ready heap would do) with the same random joins, leaves
 * and steps, and checks that every step the ring gives is the heap's next, and that a join is refused exactly
 * when the step would come before the walk's position (when that is decidable from the outside).
 */
function differential(seed: number, cpus: number, period: number, ops: number): void {
  const r = rng(seed);
  const ring = new SpinRing(cpus, period);
  const ranks = Array.from({ length: cpus }, (_, i) => i);
  for (let i = cpus - 1; i > 0; i--) {
    const j = r(i + 1);
    [ranks[i], ranks[j]] = [ranks[j], ranks[i]];
  }
  let entries: Entry[] = [];
  const members = new Set<number>();
  // The walk's position: the key of the last step given, and whether a join at that very key (with a higher
  // rank) must still be taken this round ('peeked' or just joined) or is undecidable ('fired', 'left').
  let pos: { time: number; rank: number; mode: 'peeked' | 'fired' | 'left' } | undefined;
  const next = (): Entry | undefined => {
    let best: Entry | undefined;
    for (const e of entries) if (best === undefined || less(e, best)) best = e;
    return best;
  };
  for (let op = 0; op < ops; op++) {
    const k = r(10);
    if (k < 2 && members.size < cpus) {
      let id = r(cpus);
      while (members.has(id)) id = (id + 1) % cpus;
      const base = pos === undefined ? 5 * period : pos.time;
      const first = Math.max(0, base - period + r(4 * period));
      const second = first + 1 + (period > 1 ? r(period - 1) : 0);
      const rank = ranks[id];
      const ok = ring.join(id, rank, first, second);
      if (members.size === 0) expect(ok, `seed ${seed} op ${op}: join into an empty ring`).toBe(true);
      else if (pos !== undefined) {
        if (first > pos.time) expect(ok, `seed ${seed} op ${op}: join after the walk`).toBe(true);
        else if (first < pos.time || rank < pos.rank)
          expect(ok, `seed ${seed} op ${op}: join before the walk`).toBe(false);
        else if (pos.mode === 'peeked')
          expect(ok, `seed ${seed} op ${op}: join at the peeked step`).toBe(true);
      }
      if (ok) {
        if (members.size === 0) pos = { time: first, rank, mode: 'peeked' };
        members.add(id);
        entries.push({ cpu: id, rank, time: first }, { cpu: id, rank, time: second });
      }
    } else if (k < 3 && members.size > 0) {
      const list = [...members];
      const id = list[r(list.length)];
      ring.leave(id);
      ring.leave(id); // leaving twice changes nothing
      members.delete(id);
      entries = entries.filter((e) => e.cpu !== id);
      if (pos !== undefined) pos = { ...pos, mode: 'left' };
    } else {
      const want = next();
      const got = ring.peek();
      if (want === undefined) {
        expect(got, `seed ${seed} op ${op}: empty ring`).toBe(-1);
        continue;
      }
      expect([got, ring.nextTime(), ring.nextRank()], `seed ${seed} op ${op}: next step`).toEqual([
        want.cpu,
        want.time,
        want.rank,
      ]);
      expect(ring.peek(), 'peeking twice gives the same step').toBe(got);
      if (k === 9) {
        pos = { time: want.time, rank: want.rank, mode: 'peeked' };
        continue;
      }
      ring.fired();
      want.time += period;
      pos = { time: want.time - period, rank: want.rank, mode: 'fired' };
    }
  }
}

describe('SpinRing (the calendar of quiet spinners) gives steps in the ready heap order', () => {
  it('matches the heap order through random joins, leaves and steps, and refuses joins behind the walk', () => {
    for (const period of [1, 2, 3, 7, 20]) {
      for (const cpus of [1, 2, 3, 5, 8]) {
        for (let seed = 1; seed <= 3; seed++)
          differential(seed * 7919 + period * 31 + cpus, cpus, period, 300);
      }
    }
  });

  it('an empty ring has no step; a leave of a non-member changes nothing', () => {
    const ring = new SpinRing(4, 5);
    expect(ring.peek()).toBe(-1);
    ring.leave(2);
    expect(ring.peek()).toBe(-1);
    expect(ring.join(1, 3, 12, 14)).toBe(true);
    ring.leave(0);
    expect([ring.peek(), ring.nextTime(), ring.nextRank()]).toEqual([1, 12, 3]);
    ring.leave(1);
    expect(ring.peek()).toBe(-1);
  });

  it('ties at the same start go by rank, not by CPU number or join order', () => {
    const ring = new SpinRing(3, 4);
    expect(ring.join(0, 2, 10, 11)).toBe(true);
    expect(ring.join(1, 0, 10, 12)).toBe(false); // same start, lower rank than the walk's position
    expect(ring.join(2, 1, 11, 13)).toBe(true);
    expect(ring.join(1, 0, 11, 12)).toBe(true);
    const order: Array<[number, number]> = [];
    for (let i = 0; i < 6; i++) {
      order.push([ring.peek(), ring.nextTime()]);
      ring.fired();
    }
    expect(order).toEqual([
      [0, 10],
      [1, 11],
      [2, 11],
      [0, 11],
      [1, 12],
      [2, 13],
    ]);
  });

  it('after a quiet stretch (a member far ahead of the others leaving), the walk jumps to the next due step', () => {
    const ring = new SpinRing(2, 3);
    expect(ring.join(0, 0, 0, 1)).toBe(true);
    expect(ring.join(1, 1, 3000, 3001)).toBe(true);
    ring.leave(0);
    expect([ring.peek(), ring.nextTime()]).toEqual([1, 3000]);
    ring.fired();
    expect([ring.peek(), ring.nextTime()]).toEqual([1, 3001]);
    ring.fired();
    expect([ring.peek(), ring.nextTime()]).toEqual([1, 3003]);
  });
});
