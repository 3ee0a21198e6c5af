import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type IntervalNode, IntervalTree } from './interval-tree.js';

describe('IntervalTree', () => {
  it('finds exactly the overlapping intervals after any inserts and removals (property)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('insert' as const),
        start: fc.integer({ min: 0, max: 40 }),
        len: fc.integer({ min: 1, max: 10 }),
      }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('query' as const),
        start: fc.integer({ min: 0, max: 50 }),
        len: fc.integer({ min: 1, max: 15 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const tree = new IntervalTree<number>();
        const live: IntervalNode<number>[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'insert') live.push(tree.insert(o.start, o.start + o.len, id++));
          else if (o.kind === 'remove') {
            if (live.length === 0) continue;
            const [n] = live.splice(o.pick % live.length, 1);
            tree.remove(n);
          } else {
            const end = o.start + o.len;
            const got = tree
              .overlaps(o.start, end)
              .map((n) => n.value)
              .sort((a, b) => a - b);
            const want = live
              .filter((n) => n.start < end && n.end > o.start)
              .map((n) => n.value)
              .sort((a, b) => a - b);
            expect(got).toEqual(want);
          }
          expect(tree.size).toBe(live.length);
        }
        const starts = tree.toArray().map((n) => n.start);
        expect(starts).toEqual([...starts].sort((a, b) => a - b));
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('rejects empty intervals and foreign nodes', () => {
    const t = new IntervalTree<string>();
    expect(() => t.insert(5, 5, 'x')).toThrow(RangeError);
    const other = new IntervalTree<string>().insert(1, 2, 'y');
    expect(() => t.remove(other)).toThrow(/not in this tree/);
  });
});
