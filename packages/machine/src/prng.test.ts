import { describe, expect, it } from 'vitest';
import { mixSeed, Prng } from './prng.js';

// Expected values computed with an independent implementation of mulberry32 and of the mixer (Python,
// 32-bit arithmetic by masking): every seeded schedule and jitter depends on these exact sequences.
describe('Prng (mulberry32)', () => {
  it('produces the mulberry32 sequence for each seed', () => {
    const first4 = (seed: number) => {
      const p = new Prng(seed);
      return [p.nextU32(), p.nextU32(), p.nextU32(), p.nextU32()];
    };
    expect(first4(0)).toEqual([1144304738, 1416247, 958946056, 627933444]);
    expect(first4(1)).toEqual([2693262067, 11749833, 2265367787, 4213581821]);
    expect(first4(42)).toEqual([2581720956, 1925393290, 3661312704, 2876485805]);
    expect(first4(0xffffffff)).toEqual([3850105811, 813802916, 3073704848, 4054706436]);
  });

  it('takes the seed modulo 2^32', () => {
    expect(new Prng(-1).nextU32()).toBe(new Prng(0xffffffff).nextU32());
    expect(new Prng(2 ** 32).nextU32()).toBe(new Prng(0).nextU32());
  });

  it('below(n) scales a draw to [0, n)', () => {
    const p = new Prng(7);
    expect(Array.from({ length: 12 }, () => p.below(10))).toEqual([0, 0, 9, 6, 5, 4, 4, 2, 5, 7, 2, 1]);
    const q = new Prng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = q.below(5);
      expect(Number.isInteger(v) && v >= 0 && v < 5).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(5);
    expect(new Prng(9).below(1)).toBe(0);
  });
});

describe('mixSeed', () => {
  it('mixes two integers into a 32-bit seed', () => {
    expect([mixSeed(1, 0), mixSeed(1, 1), mixSeed(0, 1), mixSeed(0xffffffff, 5)]).toEqual([
      1059954845, 31476741, 1521460187, 3441186445,
    ]);
    expect(mixSeed(-1, 5)).toBe(mixSeed(0xffffffff, 5));
    expect(mixSeed(3, -1)).toBe(mixSeed(3, 0xffffffff));
  });
});
