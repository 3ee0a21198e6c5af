import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSync } from '@spf/machine';
import { TREE_FANOUT, type TreeEntry, type TreeNode, VmaTree, type VmaTreeTx } from './vma-tree.js';

/** Every entry under `n`, in order. */
function entriesUnder<V>(n: TreeNode<V>): TreeEntry<V>[] {
  return n.leaf ? (n.slots as TreeEntry<V>[]) : n.slots.flatMap((c) => entriesUnder(c as TreeNode<V>));
}

/**
 * Each node's `low` and `gap`, recomputed from the entries under it (not with `summarize()`, which
 * `validate()` uses): the lowest start and the largest hole between two consecutive entries of the subtree.
 */
function expectSummaries<V>(t: VmaTree<V>): void {
  for (const n of t.nodes()) {
    const es = entriesUnder(n);
    let gap = 0;
    for (let i = 1; i < es.length; i++) gap = Math.max(gap, es[i].start - es[i - 1].end);
    expect([n.low, n.gap], n.line.label).toEqual([es[0].start, gap]);
  }
}

/**
 * Commits `tx` and checks what it retires: only nodes of the tree as it was before (never one the
 * transaction made itself), each once, and every one of them the new tree no longer uses (none leaks).
 */
function commitChecked<V>(t: VmaTree<V>, tx: VmaTreeTx<V>, before: Set<TreeNode<V>>): TreeNode<V>[] {
  const retired = tx.commit();
  const after = new Set(t.nodes());
  const bad = retired.filter((n, i) => !before.has(n) || after.has(n) || retired.indexOf(n) !== i);
  const leaked = [...before].filter((n) => !after.has(n) && !retired.includes(n));
  if (bad.length > 0 || leaked.length > 0)
    expect({ bad: bad.map((n) => n.line.label), leaked: leaked.map((n) => n.line.label) }).toEqual({
      bad: [],
      leaked: [],
    });
  return retired;
}

type Op =
  | { kind: 'ins'; slot: number; len: number }
  | { kind: 'rm'; pick: number }
  | { kind: 'upd'; pick: number };

describe('VmaTree', () => {
  it('finds the entry containing or following an address', () => {
    const t = new VmaTree<string>();
    const tx = t.begin();
    tx.insert(0x1000, 0x3000, 'a');
    tx.insert(0x5000, 0x6000, 'b');
    tx.commit();
    expect(t.find(0)?.value).toBe('a');
    expect(t.find(0x2fff)?.value).toBe('a');
    expect(t.find(0x3000)?.value).toBe('b');
    expect(t.lookup(0x3000)).toBeNull();
    expect(t.lookup(0x5000)?.value).toBe('b');
    expect(t.find(0x6000)).toBeNull();
    expect(t.lookup(0x6000)).toBeNull();
    expect(new VmaTree<string>().lookup(0)).toBeNull();
    expect(t.findPrev(0x5000)?.value).toBe('a');
    expect(t.findPrev(0x2000)).toBeNull();
  });

  it('agrees with a sorted-array model over random inserts, removes and updates', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('ins' as const),
              slot: fc.nat(400),
              len: fc.integer({ min: 1, max: 3 }),
            }),
            fc.record({ kind: fc.constant('rm' as const), pick: fc.nat() }),
            fc.record({ kind: fc.constant('upd' as const), pick: fc.nat() }),
          ),
          // size 'max': runs long enough for trees of three levels, where leftmost/rightmost and the gaps
          // between internal nodes matter.
          { maxLength: 300, size: 'max' },
        ),
        (ops: Op[]) => {
          const t = new VmaTree<number>();
          const model: { start: number; end: number; value: number }[] = [];
          let id = 0;
          for (const op of ops) {
            const oldNodes = new Set(t.nodes());
            const tx = t.begin();
            if (op.kind === 'ins') {
              const start = op.slot * 4;
              const end = start + op.len;
              if (model.some((e) => e.start < end && start < e.end)) continue;
              tx.insert(start, end, id);
              model.push({ start, end, value: id++ });
              model.sort((a, b) => a.start - b.start);
            } else if (model.length > 0) {
              const i = op.pick % model.length;
              const e = model[i];
              if (op.kind === 'rm') {
                expect(tx.remove(e.end)).toBe(true);
                model.splice(i, 1);
              } else {
                const nend = e.end === e.start + 1 ? e.end : e.end - 1;
                tx.update(e.end, e.start, nend, e.value);
                model[i] = { ...e, end: nend };
              }
            }
            const before = t.root;
            const retired = commitChecked(t, tx, oldNodes);
            for (const n of retired) n.poison('test');
            expect(t.validate()).toEqual([]);
            if (before && retired.length === 0 && t.root !== before) expect(before.poisoned).toBeNull();
          }
          expectSummaries(t);
          expect([...t.entries()].map((e) => [e.start, e.end, e.value])).toEqual(
            model.map((e) => [e.start, e.end, e.value]),
          );
          for (let a = 0; a < 1610; a += 7) {
            const want = model.find((e) => e.end > a) ?? null;
            expect(t.find(a)?.value ?? null).toBe(want?.value ?? null);
            expect(runSync(t.findRcu(a))?.value ?? null).toBe(want?.value ?? null);
            const prev = [...model].reverse().find((e) => e.end <= a) ?? null;
            expect(t.findPrev(a)?.value ?? null).toBe(prev?.value ?? null);
          }
        },
      ),
      {
        numRuns: Number(process.env.SPF_PROPERTY_RUNS ?? 60),
        seed: Number(process.env.SPF_PROPERTY_SEED ?? 20251125),
      },
    );
  });

  it('keeps the old version intact for a reader that loaded the old root', () => {
    const t = new VmaTree<number>();
    let tx = t.begin();
    for (let i = 0; i < 100; i++) tx.insert(i * 10, i * 10 + 5, i);
    tx.commit();
    const old = t.root;
    tx = t.begin();
    tx.remove(505);
    const retired = tx.commit();
    expect(retired.length).toBeGreaterThan(0);
    expect(retired).toContain(old);
    // The old root still describes the old tree.
    const oldTree = new VmaTree<number>();
    oldTree.root = old;
    expect(oldTree.lookup(502)?.value).toBe(50);
    expect(t.lookup(502)).toBeNull();
    expect(t.height()).toBeGreaterThan(1);
  });

  it('stays shallow after most entries are removed', () => {
    const t = new VmaTree<number>();
    let tx = t.begin();
    for (let i = 0; i < 5000; i++) tx.insert(i * 10, i * 10 + 5, i);
    tx.commit();
    expect(t.height()).toBe(4);
    for (let i = 0; i < 5000; i++) {
      if (i % 500 === 0) continue;
      tx = t.begin();
      tx.remove(i * 10 + 5);
      tx.commit();
    }
    expect(t.count()).toBe(10);
    expect(t.validate()).toEqual([]);
    expect(t.height()).toBeLessThanOrEqual(2);
  });

  it('reports a walk through a freed node as a use-after-free', () => {
    const t = new VmaTree<number>();
    let tx = t.begin();
    tx.insert(0, 10, 1);
    tx.commit();
    const staleRoot = t.root;
    tx = t.begin();
    tx.insert(20, 30, 2);
    for (const n of tx.commit()) n.poison('freed by test');
    t.root = staleRoot;
    expect(() => runSync(t.findRcu(5))).toThrow(/use-after-free|freed/);
  });
});

describe('VmaTree node size and deletion merges', () => {
  const entry = (start: number, end: number, value: number): TreeEntry<number> => ({ start, end, value });
  /** A hand-built leaf of `n` entries [b + 10 i, b + 10 i + 5). */
  function leafOf(t: VmaTree<number>, base: number, n: number): TreeNode<number> {
    const es = Array.from({ length: n }, (_, i) => entry(base + i * 10, base + i * 10 + 5, base + i));
    return t.newNode(
      true,
      0,
      es.map((e) => e.end),
      es,
    );
  }
  function internal(t: VmaTree<number>, children: TreeNode<number>[]): TreeNode<number> {
    return t.newNode(
      false,
      0,
      children.map((c) => c.max),
      children,
    );
  }
  function removeChecked(t: VmaTree<number>, end: number): void {
    const before = new Set(t.nodes());
    const tx = t.begin();
    expect(tx.remove(end)).toBe(true);
    commitChecked(t, tx, before);
    expect(t.validate()).toEqual([]);
    expect(t.lookup(end - 1)).toBeNull();
  }
  const leafSizes = (t: VmaTree<number>) =>
    t
      .nodes()
      .filter((n) => n.leaf)
      .map((n) => n.slots.length);

  it('a node holds TREE_FANOUT slots: one more splits it', () => {
    const ranges = Array.from({ length: TREE_FANOUT + 1 }, (_, i) => i * 10);
    const t = new VmaTree<number>();
    let tx = t.begin();
    for (const s of ranges.slice(0, TREE_FANOUT)) tx.insert(s, s + 5, s);
    tx.commit();
    expect([t.height(), t.count()]).toEqual([1, TREE_FANOUT]);
    tx = t.begin();
    tx.insert(TREE_FANOUT * 10, TREE_FANOUT * 10 + 5, 0);
    tx.commit();
    expect(t.height()).toBe(2);
    expect(leafSizes(t).reduce((a, b) => a + b)).toBe(TREE_FANOUT + 1);
  });

  it('merges a leaf into its sibling once it has fewer than TREE_FANOUT / 4 entries and both fit', () => {
    const t = new VmaTree<number>();
    t.root = internal(t, [leafOf(t, 0, 8), leafOf(t, 1000, 5), leafOf(t, 2000, 8)]);
    expect(t.validate()).toEqual([]);
    removeChecked(t, 1005);
    // Four entries (TREE_FANOUT / 4) is not underfull yet, though they would fit next to the leaf before.
    expect(leafSizes(t)).toEqual([8, 4, 8]);
    removeChecked(t, 1015);
    // Three entries: merged into the leaf before it.
    expect(leafSizes(t)).toEqual([11, 8]);
    expect(t.count()).toBe(19);
    // Two underfull leaves merge when together they fill a node exactly, not when they would overflow it.
    t.root = internal(t, [leafOf(t, 0, 13), leafOf(t, 1000, 4), leafOf(t, 2000, 14), leafOf(t, 3000, 4)]);
    removeChecked(t, 1005);
    expect(leafSizes(t)).toEqual([16, 14, 4]);
    removeChecked(t, 3005);
    expect(leafSizes(t)).toEqual([16, 14, 3]);
    // The first leaf merges with the one after it, which the transaction did not copy: that one is retired.
    t.root = internal(t, [leafOf(t, 0, 4), leafOf(t, 1000, 8), leafOf(t, 2000, 8)]);
    removeChecked(t, 5);
    expect(leafSizes(t)).toEqual([11, 8]);
  });

  it('a node left with one child keeps it, and a child that empties is removed from its parent', () => {
    const t = new VmaTree<number>();
    const full = () =>
      internal(
        t,
        Array.from({ length: TREE_FANOUT }, (_, i) => leafOf(t, 10_000 + i * 1000, 4)),
      );
    // A node with a single leaf of two entries, next to a full node: nothing to merge with.
    t.root = internal(t, [internal(t, [leafOf(t, 0, 2)]), full()]);
    expect(t.validate()).toEqual([]);
    removeChecked(t, 5);
    expect(t.count()).toBe(1 + TREE_FANOUT * 4);
    // A node whose only leaf holds one entry: removing it removes the leaf, then the node.
    t.root = internal(t, [internal(t, [leafOf(t, 0, 1)]), full()]);
    removeChecked(t, 5);
    expect(t.count()).toBe(TREE_FANOUT * 4);
    expect(t.height()).toBe(2);
  });

  it('a remove that finds nothing keeps what the transaction already retired', () => {
    const t = new VmaTree<number>();
    let tx = t.begin();
    for (let i = 0; i < 2 * TREE_FANOUT; i++) tx.insert(i * 10, i * 10 + 5, i);
    tx.commit();
    for (const h of [1, 2]) {
      const small = new VmaTree<number>();
      const stx = small.begin();
      stx.insert(0, 5, 0);
      stx.insert(10, 15, 1);
      stx.commit();
      const tree = h === 1 ? small : t;
      const before = new Set(tree.nodes());
      tx = tree.begin();
      tx.insert(6, 8, 99);
      // An end that is not stored, in the subtree the insert just copied.
      expect(tx.remove(7)).toBe(false);
      const retired = commitChecked(tree, tx, before);
      expect(retired.length).toBe(h);
      expect(tree.lookup(7)?.value).toBe(99);
    }
  });
});
