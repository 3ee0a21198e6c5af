import { Machine, runSync, UseAfterFreeError } from '@spf/machine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TREE_FANOUT, type TreeEntry, type TreeNode, VmaTree } from './vma-tree.js';

/** A tree of `[start, end)` ranges, value = index, inserted in one transaction. */
function treeOf(ranges: readonly [number, number][]): VmaTree<number> {
  const t = new VmaTree<number>();
  const tx = t.begin();
  for (const [i, [s, e]] of ranges.entries()) tx.insert(s, e, i);
  tx.commit();
  return t;
}

/** The highest free range of `length` in [lo, hi) among sorted, disjoint `ranges`, by brute force. */
function modelGapRev(ranges: readonly [number, number][], length: number, lo: number, hi: number) {
  const bounds: [number, number, number | null][] = [];
  let prevEnd = 0;
  ranges.forEach(([s, e], i) => {
    bounds.push([prevEnd, s, i]);
    prevEnd = e;
  });
  bounds.push([prevEnd, Number.POSITIVE_INFINITY, null]);
  for (let k = bounds.length - 1; k >= 0; k--) {
    const [a, b, next] = bounds[k];
    if (Math.min(b, hi) - Math.max(a, lo) >= length) return { end: Math.min(b, hi), next };
  }
  return null;
}

describe('VmaTree.gapAreaRev (mas_empty_area_rev)', () => {
  it('finds the highest gap that fits, clipped to the limits, and the entry above it', () => {
    const t = treeOf([
      [10, 20],
      [30, 35],
      [60, 70],
    ]);
    expect(t.gapAreaRev(5, 0, 100)).toEqual({ end: 100, next: null });
    expect(t.gapAreaRev(5, 0, 65)?.end).toBe(60);
    expect(t.gapAreaRev(5, 0, 65)?.next?.value).toBe(2);
    expect(t.gapAreaRev(25, 0, 60)).toEqual({ end: 60, next: t.find(60) });
    expect(t.gapAreaRev(26, 0, 60)).toBeNull();
    expect(t.gapAreaRev(10, 0, 30)?.end).toBe(30);
    expect(t.gapAreaRev(10, 0, 30)?.next?.value).toBe(1);
    expect(t.gapAreaRev(10, 0, 29)?.end).toBe(10);
    expect(t.gapAreaRev(10, 0, 29)?.next?.value).toBe(0);
    expect(t.gapAreaRev(11, 0, 30)).toBeNull();
    expect(t.gapAreaRev(5, 21, 29)).toEqual({ end: 29, next: t.find(29) });
    expect(t.gapAreaRev(9, 21, 29)).toBeNull();
    expect(new VmaTree<number>().gapAreaRev(5, 0, 100)).toEqual({ end: 100, next: null });
    expect(new VmaTree<number>().gapAreaRev(200, 0, 100)).toBeNull();
  });

  it('agrees with a brute-force search over many-level trees', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 30 })), {
          minLength: 1,
          maxLength: 3 * TREE_FANOUT * TREE_FANOUT,
          // Long arrays too (fast-check keeps them short by default): trees of three levels.
          size: 'max',
        }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 1, max: 60 }),
            fc.integer({ min: 0, max: 20_000 }),
            fc.integer({ min: 0, max: 20_000 }),
          ),
          { minLength: 1, maxLength: 30 },
        ),
        (shape, queries) => {
          const ranges: [number, number][] = [];
          let at = 0;
          for (const [gap, len] of shape) {
            at += gap;
            ranges.push([at, at + len]);
            at += len;
          }
          const t = treeOf(ranges);
          for (const [length, a, b] of queries) {
            const lo = Math.min(a, b);
            const hi = Math.max(a, b) + length;
            const got = t.gapAreaRev(length, lo, hi);
            const want = modelGapRev(ranges, length, lo, hi);
            expect(got === null ? null : { end: got.end, next: got.next?.value ?? null }).toEqual(want);
          }
        },
      ),
      { numRuns: 40, seed: 20260202 },
    );
  });
});

describe('VmaTree walks', () => {
  it('entries(from) and entriesReverse(before) list the entries from an address, up or down', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 3 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    expect(t.height()).toBeGreaterThan(1);
    expect([...t.entries(52)].slice(0, 3).map((e) => e.value)).toEqual([5, 6, 7]);
    expect([...t.entries(55)].slice(0, 1).map((e) => e.value)).toEqual([6]);
    expect([...t.entriesReverse(52)].slice(0, 3).map((e) => e.value)).toEqual([5, 4, 3]);
    expect([...t.entriesReverse(50)].slice(0, 2).map((e) => e.value)).toEqual([4, 3]);
    expect([...t.entriesReverse(57)].slice(0, 2).map((e) => e.value)).toEqual([5, 4]);
    // From inside an entry, one byte before its end: that entry first.
    expect([...t.entriesReverse(54)].slice(0, 2).map((e) => e.value)).toEqual([5, 4]);
    expect([...t.entriesReverse(1000)].length).toBe(3 * TREE_FANOUT);
    expect([...t.entriesReverse(0)]).toEqual([]);
    expect(t.count()).toBe(3 * TREE_FANOUT);
    expect(t.nodes().filter((n) => n.leaf).length).toBeGreaterThan(1);
    expect(t.nodes()[0]).toBe(t.root);
    expect(new VmaTree().height()).toBe(0);
    expect(new VmaTree().count()).toBe(0);
    expect(new VmaTree().nodes()).toEqual([]);
  });

  it('findPrev finds the last entry ending at or below an address across leaves and internal nodes', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 40 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    expect(t.height()).toBe(3);
    for (let a = 0; a < 6500; a += 3) {
      // Entry i is [10 i, 10 i + 5): the last one ending at or below a.
      const want = a < 5 ? null : Math.min(Math.floor((a - 5) / 10), ranges.length - 1);
      expect(t.findPrev(a)?.value ?? null).toBe(want);
    }
  });

  it('a lock-free lookup reads the root word and one node per level, and stops at a freed node', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 3 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'reader', function* () {
      expect((yield* t.findRcu(101))?.value).toBe(10);
      expect(yield* t.findRcu(10_000)).toBeNull();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    const reads = (r.trace ?? []).filter((e) => e.kind === 'read').map((e) => e.label);
    expect(reads.slice(0, 1 + t.height())).toEqual(['mas_root', ...Array(t.height()).fill('mas_walk')]);
    // What race and use-after-free reports call the root word and the nodes.
    expect(t.rootLine.label).toBe('mm->mm_mt');
    expect(t.nodes().every((n) => /^maple_node#\d+$/.test(n.line.label))).toBe(true);
    expect(runSync(new VmaTree<number>().findRcu(0))).toBeNull();
    t.nodes()[1].poison('kfree_rcu');
    expect(() => runSync(t.findRcu(0))).toThrow(UseAfterFreeError);
    expect(() => runSync(t.findRcu(0))).toThrow(
      `lockless VMA-tree walk read freed ${t.nodes()[1].line.label} (kfree_rcu)`,
    );
  });
});

describe('VmaTree transactions', () => {
  it('publishes nothing until commit, which may happen once; commitRcu stores the root word', () => {
    const t = treeOf([[0, 10]]);
    const tx = t.begin();
    tx.insert(20, 30, 1);
    expect(t.find(20)).toBeNull();
    expect(tx.find(20)?.value).toBe(1);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'writer', function* () {
      yield* tx.commitRcu();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect((r.trace ?? []).filter((e) => e.kind === 'write').map((e) => `${e.label}`)).toEqual([
      'rcu_assign_pointer(ma_root)',
    ]);
    expect(t.find(20)?.value).toBe(1);
    expect(() => tx.commit()).toThrow(
      'VmaTreeTx.commit called twice; start a new transaction with tree.begin()',
    );
  });

  it('remove of a missing end changes nothing and retires nothing; update moves an entry in place', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 2 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    const root = t.root;
    let tx = t.begin();
    expect(tx.remove(7)).toBe(false);
    expect(tx.remove(10_000)).toBe(false);
    expect(tx.update(7, 0, 6, 99)).toBe(false);
    expect(tx.commit()).toEqual([]);
    expect(t.root).toBe(root);
    expect(new VmaTree<number>().begin().remove(5)).toBe(false);
    tx = t.begin();
    expect(tx.update(15, 10, 18, 42)).toBe(true);
    tx.commit();
    expect(t.lookup(17)?.value).toBe(42);
    expect(t.validate()).toEqual([]);
    // Removing every entry empties the tree.
    tx = t.begin();
    for (const [, e] of ranges) tx.remove(e === 15 ? 18 : e);
    tx.commit();
    expect(t.root).toBeNull();
    expect(t.count()).toBe(0);
  });

  it('keeps per-node gap summaries current through inserts and removes', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 4 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    expect(t.root?.gap).toBe(5);
    expect(t.root?.low).toBe(0);
    const tx = t.begin();
    for (let i = 20; i < 30; i++) tx.remove(i * 10 + 5);
    tx.commit();
    expect(t.validate()).toEqual([]);
    expect(t.root?.gap).toBe(105);
    expect(t.gapAreaRev(100, 0, 1000)).toEqual({ end: 1000, next: null });
    expect(t.gapAreaRev(100, 0, 600)?.end).toBe(300);
  });
});

describe('VmaTree.validate', () => {
  it('reports stale pivots and summaries, overlapping, empty, freed and uneven nodes', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 3 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    expect(t.validate()).toEqual([]);
    const leaf = t.nodes().find((n) => n.leaf);
    if (!leaf) throw new Error('no leaf');
    leaf.pivots[0] += 1;
    expect(t.validate()).toContain(`pivot 0x${leaf.pivots[0].toString(16)} != end 0x5`);
    leaf.pivots[0] -= 1;
    leaf.poison('early');
    expect(t.validate()).toEqual([`${leaf.line.label} is reachable but freed (early)`]);
    leaf.poisoned = null;
    leaf.gap = 1234;
    expect(t.validate()).toContain(`${leaf.line.label} has a stale gap summary`);
    const resummarize = () => {
      for (const n of t.nodes().reverse()) n.summarize();
    };
    resummarize();
    expect(t.validate()).toEqual([]);
    const saved = leaf.slots[1];
    leaf.slots[1] = { start: 3, end: 15, value: -1 };
    expect(t.validate()).toContain('entry at 0x3 overlaps or precedes the one ending at 0x5');
    leaf.slots[1] = { start: 15, end: 15, value: -1 };
    leaf.pivots[1] = 15;
    expect(t.validate()).toContain('entry [0xf, 0xf) is empty or inverted');
    leaf.slots[1] = saved;
    leaf.pivots[1] = 15;
    resummarize();
    expect(t.validate()).toEqual([]);
    const root = t.root;
    if (!root || root.leaf) throw new Error('expected an internal root');
    root.pivots[0] += 1;
    expect(t.validate()).toContain(`stale pivot in ${root.line.label}`);
  });
});

describe('VmaTree gap summaries across nodes (what mas_empty_area_rev() prunes with)', () => {
  const first = (n: TreeNode<number>): TreeEntry<number> =>
    n.leaf ? (n.slots[0] as TreeEntry<number>) : first(n.slots[0] as TreeNode<number>);
  const last = (n: TreeNode<number>): TreeEntry<number> =>
    n.leaf
      ? (n.slots[n.slots.length - 1] as TreeEntry<number>)
      : last(n.slots[n.slots.length - 1] as TreeNode<number>);

  it("a node's gap counts the gaps between its children, in two- and three-level trees", () => {
    for (const count of [4 * TREE_FANOUT, 40 * TREE_FANOUT]) {
      const ranges: [number, number][] = [];
      for (let i = 0; i < count; i++) ranges.push([i * 10, i * 10 + 5]);
      const t = treeOf(ranges);
      const root = t.root;
      if (root === null || root.leaf || root.slots.length < 3) throw new Error('expected 3+ children');
      expect(t.height()).toBe(count > 16 * TREE_FANOUT ? 3 : 2);
      // Cut a 25-byte gap exactly between the first two subtrees of the root: only the root can see it.
      const below = last(root.slots[0] as TreeNode<number>);
      const above = first(root.slots[1] as TreeNode<number>);
      const tx = t.begin();
      tx.remove(below.end);
      tx.remove(above.end);
      tx.commit();
      expect(t.validate()).toEqual([]);
      const gapStart = below.start - 5;
      const gapEnd = above.end + 5;
      expect(gapEnd - gapStart).toBe(25);
      expect(t.root?.gap, `${count}`).toBe(25);
      expect(((t.root as TreeNode<number>).slots[0] as TreeNode<number>).gap).toBe(5);
      const found = t.gapAreaRev(20, 0, 10 * count);
      expect(found?.end, `${count}`).toBe(gapEnd);
      expect(found?.next?.start).toBe(gapEnd);
    }
  });

  it('descends into a subtree whose largest gap fits exactly, and goes on below one whose fitting gap is above the limit', () => {
    const ranges: [number, number][] = [];
    for (let i = 0; i < 4 * TREE_FANOUT; i++) ranges.push([i * 10, i * 10 + 5]);
    const t = treeOf(ranges);
    const root = t.root;
    if (root === null || root.leaf || root.slots.length < 3) throw new Error('expected 3+ leaves');
    // A 25-byte gap between leaves 0 and 1, and one inside leaf 2.
    const l0 = root.slots[0] as TreeNode<number>;
    const l1 = root.slots[1] as TreeNode<number>;
    const l2 = root.slots[2] as TreeNode<number>;
    const between = [l0.slots[l0.slots.length - 1], l1.slots[0]] as TreeEntry<number>[];
    const inside = [l2.slots[1], l2.slots[2]] as TreeEntry<number>[];
    const tx = t.begin();
    for (const e of [...between, ...inside]) tx.remove(e.end);
    tx.commit();
    const betweenEnd = between[1].end + 5;
    const insideStart = inside[0].start - 5;
    const insideEnd = inside[1].end + 5;
    // Exactly 25 fits the gap inside leaf 2 (a subtree whose gap equals the length is searched).
    expect(t.gapAreaRev(25, 0, insideEnd)?.end).toBe(insideEnd);
    expect(t.gapAreaRev(25, 0, insideEnd)?.next?.start).toBe(insideEnd);
    // Below the gap inside leaf 2, the search leaves that leaf empty-handed and finds the one between leaves.
    expect(t.gapAreaRev(20, 0, insideStart)?.end).toBe(betweenEnd);
    expect(t.gapAreaRev(26, 0, insideEnd)).toBeNull();
  });
});

describe('VmaTree.validate: every kind of broken node, with the exact report', () => {
  const entry = (start: number, end: number, value: number): TreeEntry<number> => ({ start, end, value });

  it('adjacent entries are sound (VMAs often touch); an empty, an overflowing or a deeper leaf is reported', () => {
    const t = new VmaTree<number>();
    const leaf = (es: TreeEntry<number>[]) =>
      t.newNode(
        true,
        0,
        es.map((e) => e.end),
        es,
      );
    const a = leaf([entry(0, 5, 0), entry(5, 10, 1), entry(10, 12, 2)]);
    t.root = t.newNode(false, 0, [12], [a]);
    expect(t.validate()).toEqual([]);
    // A leaf one level deeper than the first one.
    const b = leaf([entry(20, 25, 3)]);
    const mid = t.newNode(false, 0, [25], [b]);
    t.root = t.newNode(false, 0, [12, 25], [a, mid]);
    expect(t.validate()).toEqual([`${b.line.label} is a leaf at depth 2, not 1`]);
    // An empty leaf: only that (its parent's pivot for it is not compared).
    const empty = leaf([]);
    t.root = t.newNode(false, 0, [12, 12], [a, empty]);
    expect(t.validate()).toEqual([`${empty.line.label} is empty`]);
    // More slots than a node holds.
    const big = leaf(Array.from({ length: TREE_FANOUT + 1 }, (_, i) => entry(i * 2, i * 2 + 1, i)));
    t.root = big;
    expect(t.validate()).toEqual([`${big.line.label} overflows`]);
    // A stale lowest start is as wrong as a stale gap.
    t.root = a;
    a.low = 1;
    expect(t.validate()).toEqual([`${a.line.label} has a stale gap summary`]);
  });
});
