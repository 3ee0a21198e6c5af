import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import { ReadyHeap } from './ready-heap.js';

/** Reference answer: the CPU with the earliest key, ties to the lower rank. */
function earliest(keys: Map<number, number>, rank: Int32Array): number {
  let best = -1;
  for (const [id, k] of keys) {
    const bk = best < 0 ? 0 : (keys.get(best) as number);
    if (best < 0 || k < bk || (k === bk && rank[id] < rank[best])) best = id;
  }
  return best;
}

/** Pops the heap empty (top, then remove), returning the ids in the order they came out. */
function drain(h: ReadyHeap): number[] {
  const out: number[] = [];
  while (h.size > 0) {
    const id = h.top();
    out.push(id);
    h.remove(id);
  }
  return out;
}

describe('ReadyHeap: the timed policy orders CPUs by ready time, ties by rank', () => {
  it('gives the earliest CPU first, and CPUs ready at the same time in rank order', () => {
    const h = new ReadyHeap(6, Int32Array.from([0, 1, 2, 3, 4, 5]));
    h.set(3, 50);
    h.set(1, 20);
    h.set(5, 20);
    h.set(0, 70);
    h.set(2, 20);
    h.set(4, 10);
    expect(h.size).toBe(6);
    expect(drain(h)).toEqual([4, 1, 2, 5, 3, 0]);
    expect(h.size).toBe(0);
  });

  it('breaks ties by the given rank, not by the CPU id', () => {
    // rank: CPU 3 first, then 0, 2, 1
    const h = new ReadyHeap(4, Int32Array.from([1, 3, 2, 0]));
    for (let id = 0; id < 4; id++) h.set(id, 100);
    expect(drain(h)).toEqual([3, 0, 2, 1]);
  });

  it('moves a CPU when its ready time changes, earlier or later', () => {
    const h = new ReadyHeap(5, Int32Array.from([0, 1, 2, 3, 4]));
    for (let id = 0; id < 5; id++) h.set(id, 10 * (id + 1)); // 10, 20, 30, 40, 50
    expect(h.top()).toBe(0);
    h.set(4, 5); // the last CPU becomes the earliest
    expect(h.top()).toBe(4);
    h.set(4, 60); // and then the latest
    expect(h.top()).toBe(0);
    h.set(0, 35); // the first moves between 2 (30) and 3 (40)
    expect(h.size).toBe(5);
    expect(drain(h)).toEqual([1, 2, 0, 3, 4]);
  });

  it('moving a CPU to a time equal to another keeps the rank order', () => {
    const h = new ReadyHeap(3, Int32Array.from([0, 1, 2]));
    h.set(0, 10);
    h.set(1, 20);
    h.set(2, 30);
    h.set(0, 30); // later, tied with CPU 2: CPU 0 still goes first of the two
    expect(drain(h)).toEqual([1, 0, 2]);
    h.set(2, 30);
    h.set(1, 40);
    h.set(1, 30); // earlier, tied with CPU 2: CPU 1 goes before it
    expect(drain(h)).toEqual([1, 2]);
  });

  it('removes any CPU, and ignores one that is not in the heap', () => {
    const h = new ReadyHeap(5, Int32Array.from([0, 1, 2, 3, 4]));
    for (let id = 0; id < 5; id++) h.set(id, [30, 10, 40, 20, 50][id]);
    h.remove(2); // an inner node
    expect(h.size).toBe(4);
    h.remove(2); // again: no effect
    expect(h.size).toBe(4);
    h.remove(1); // the top
    expect(h.top()).toBe(3);
    h.set(2, 5); // back in
    expect(drain(h)).toEqual([2, 3, 0, 4]);
    h.remove(0); // empty heap
    expect(h.size).toBe(0);
  });

  it('removing any CPU keeps the others in order, for every placement of 7 CPUs at three ready times', () => {
    // The entry that fills the hole may have to move up (it came from another subtree) or down.
    const n = 7;
    const ranks = [
      Int32Array.from([0, 1, 2, 3, 4, 5, 6]),
      Int32Array.from([6, 5, 4, 3, 2, 1, 0]),
      Int32Array.from([3, 0, 5, 1, 6, 2, 4]),
    ];
    const check = (keys: number[], rank: Int32Array) => {
      for (let rm = 0; rm < n; rm++) {
        const h = new ReadyHeap(n, rank);
        for (let id = 0; id < n; id++) h.set(id, keys[id]);
        h.remove(rm);
        const want = [...Array(n).keys()]
          .filter((id) => id !== rm)
          .sort((a, b) => keys[a] - keys[b] || rank[a] - rank[b]);
        const got = drain(h);
        if (got.join() !== want.join())
          return `keys ${keys} ranks ${rank} remove ${rm}: ${got} instead of ${want}`;
      }
      return null;
    };
    const problems: string[] = [];
    // Every assignment of three ready times (many ties, and every strict order), under three rank orders.
    for (let code = 0; code < 3 ** n; code++) {
      const keys = Array.from({ length: n }, (_, i) => 10 * (1 + (Math.floor(code / 3 ** i) % 3)));
      for (const rank of ranks) {
        const p = check(keys, rank);
        if (p !== null) problems.push(p);
      }
    }
    expect(problems.slice(0, 3)).toEqual([]);
  });

  it('agrees with a sorted list over a long random sequence of sets and removes', () => {
    const cpus = 13;
    const rng = new Prng(11);
    const rank = Int32Array.from({ length: cpus }, (_, i) => i);
    for (let i = cpus - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [rank[i], rank[j]] = [rank[j], rank[i]];
    }
    const h = new ReadyHeap(cpus, rank);
    const keys = new Map<number, number>();
    for (let op = 0; op < 1500; op++) {
      const id = rng.below(cpus);
      if (rng.below(4) === 0) {
        h.remove(id);
        keys.delete(id);
      } else {
        const k = rng.below(8) * 10; // few distinct times: many ties
        h.set(id, k);
        keys.set(id, k);
      }
      expect(h.size).toBe(keys.size);
      if (keys.size > 0) expect(h.top()).toBe(earliest(keys, rank));
    }
    const expected = [...keys.keys()].sort(
      (a, b) => (keys.get(a) as number) - (keys.get(b) as number) || rank[a] - rank[b],
    );
    expect(drain(h)).toEqual(expected);
  });
});

/** The CPU a naive scan picks: smallest key, then smallest rank. */
function naiveTop(keys: Map<number, number>, rank: Int32Array): number {
  let best = -1;
  for (const [id, k] of keys) {
    const bk = best < 0 ? 0 : (keys.get(best) as number);
    if (best < 0 || k < bk || (k === bk && rank[id] < rank[best])) best = id;
  }
  return best;
}

describe('the ready heap of the timed policy', () => {
  for (const cpus of [1, 2, 7, 64, 300]) {
    it(`always tops with the earliest CPU, ties by rank, through random sets and removals (${cpus} CPUs)`, () => {
      const prng = new Prng(cpus * 7919 + 1);
      const rank = Int32Array.from({ length: cpus }, (_, i) => i);
      for (let i = cpus - 1; i > 0; i--) {
        const j = prng.below(i + 1);
        [rank[i], rank[j]] = [rank[j], rank[i]];
      }
      const heap = new ReadyHeap(cpus, rank);
      const keys = new Map<number, number>();
      for (let step = 0; step < 2000; step++) {
        const id = prng.below(cpus);
        if (prng.below(4) === 0) {
          heap.remove(id);
          keys.delete(id);
        } else {
          // Few distinct keys, so ties are common and the rank decides.
          const key = prng.below(8) * 10;
          heap.set(id, key);
          keys.set(id, key);
        }
        expect(heap.size).toBe(keys.size);
        if (keys.size > 0) expect(heap.top()).toBe(naiveTop(keys, rank));
      }
    });
  }
});
