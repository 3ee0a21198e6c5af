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
    expect(() => t.insert(5, 5, 'x')).toThrow('an interval needs start < end, got [5, 5)');
    expect(() => t.insert(7, 3, 'x')).toThrow('an interval needs start < end, got [7, 3)');
    expect(t.size).toBe(0);
    const other = new IntervalTree<string>().insert(1, 2, 'y');
    expect(() => t.remove(other)).toThrow(/not in this tree/);
  });

  /** The tree's root (the treap is private; its shape is what these checks look at). */
  const rootOf = <T>(t: IntervalTree<T>) => (t as unknown as { root: IntervalNode<T> | null }).root;
  const depth = <T>(n: IntervalNode<T> | null): number =>
    n === null ? 0 : 1 + Math.max(depth(n.left), depth(n.right));
  /** Problems with the treap: start order, heap order of priorities, and each subtree's largest end. */
  function shapeProblems<T>(n: IntervalNode<T> | null, out: string[] = []): string[] {
    if (n === null) return out;
    for (const c of [n.left, n.right]) {
      if (c !== null && c.priority > n.priority)
        out.push(`priority of [${c.start}, ${c.end}) above its parent`);
    }
    if (n.left !== null && n.left.start > n.start)
      out.push(`left child of [${n.start}, ${n.end}) starts later`);
    if (n.right !== null && n.right.start < n.start)
      out.push(`right child of [${n.start}, ${n.end}) starts earlier`);
    const maxEnd = Math.max(n.end, n.left?.maxEnd ?? -Infinity, n.right?.maxEnd ?? -Infinity);
    if (n.maxEnd !== maxEnd) out.push(`maxEnd of [${n.start}, ${n.end}) is ${n.maxEnd}, not ${maxEnd}`);
    shapeProblems(n.left, out);
    shapeProblems(n.right, out);
    return out;
  }

  it('stays a balanced treap under sorted inserts and removals (depth logarithmic, heap and maxEnd exact)', () => {
    const t = new IntervalTree<number>();
    const nodes: IntervalNode<number>[] = [];
    for (let i = 0; i < 2000; i++) nodes.push(t.insert(i, i + 1 + (i % 7), i));
    expect(shapeProblems(rootOf(t))).toEqual([]);
    expect(depth(rootOf(t))).toBeLessThanOrEqual(40); // a sorted insert without rotations would be 2000 deep
    for (let i = 0; i < 2000; i += 2) t.remove(nodes[i]);
    expect(t.size).toBe(1000);
    expect(shapeProblems(rootOf(t))).toEqual([]);
    expect(depth(rootOf(t))).toBeLessThanOrEqual(40);
    // The same in decreasing order (every insert goes left).
    const d = new IntervalTree<number>();
    for (let i = 2000; i > 0; i--) d.insert(i, i + 3, i);
    expect(shapeProblems(rootOf(d))).toEqual([]);
    expect(depth(rootOf(d))).toBeLessThanOrEqual(40);
  });

  it('removes each of several intervals with the same start, in any order', () => {
    for (const order of [
      [0, 1, 2, 3, 4],
      [4, 3, 2, 1, 0],
      [2, 0, 4, 1, 3],
    ]) {
      const t = new IntervalTree<number>();
      const nodes = [5, 1, 9, 3, 7].map((len, i) => t.insert(10, 10 + len, i));
      t.insert(0, 5, -1);
      t.insert(20, 25, -2);
      const left = new Set([0, 1, 2, 3, 4]);
      for (const k of order) {
        t.remove(nodes[k]);
        left.delete(k);
        expect(shapeProblems(rootOf(t))).toEqual([]);
        expect(
          t
            .overlaps(10, 11)
            .map((n) => n.value)
            .sort(),
        ).toEqual([...left].sort());
      }
      expect(t.toArray().map((n) => n.value)).toEqual([-1, -2]);
      expect(() => t.remove(nodes[0])).toThrow(/interval \[10, 15\) is not in this tree/);
    }
  });

  it('reports the overlapping intervals in order of start, without sorting by the caller', () => {
    const t = new IntervalTree<string>();
    for (const [start, end] of [
      [30, 40],
      [10, 50],
      [20, 21],
      [0, 5],
      [45, 60],
      [25, 35],
    ] as const)
      t.insert(start, end, `${start}`);
    expect(t.overlaps(20, 46).map((n) => n.value)).toEqual(['10', '20', '25', '30', '45']);
    expect(t.toArray().map((n) => n.value)).toEqual(['0', '10', '20', '25', '30', '45']);
  });
});
