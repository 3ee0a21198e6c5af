import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import { ReadyHeap } from './ready-heap.js';

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
