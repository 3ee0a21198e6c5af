import { type Kernel, MemoryLine, UseAfterFreeError, readEffect, writeEffect } from '@spf/machine';

/**
 * The VMA tree of an mm: a copy-on-write B+tree in the spirit of the maple tree (lib/maple_tree.c), keyed
 * by address ranges. Each node is one `MemoryLine`; internal nodes hold "pivots" (the highest end
 * address in each child), leaves hold the entries `[start, end) -> value` in address order.
 *
 * Writers (who hold the mmap lock for writing) never modify a node that a reader may see: a
 * {@link VmaTreeTx} copies the nodes on the path it changes (once per transaction), and {@link VmaTreeTx.commit}
 * publishes the new root with a single store. Lock-free readers under rcu_read_lock therefore see either the
 * old or the new tree; the replaced nodes are handed to a retire function (the mm passes them to RCU's
 * kfree_rcu) and poisoned when freed, so a reader that skipped RCU trips a use-after-free report.
 *
 * Each node also keeps the lowest start and the largest gap between consecutive entries of its subtree
 * (the maple tree's gap tracking), so the top-down free-area search skips subtrees without a big enough
 * gap. Simplifications against the maple tree: gaps are not stored as NULL ranges, and deletion only merges
 * an underfull node into a sibling when both fit (no borrowing), which keeps the height logarithmic.
 */
export const TREE_FANOUT = 16;

/** One stored range. Immutable once published. */
export type TreeEntry<V> = { readonly start: number; readonly end: number; readonly value: V };

/** A node of the tree (a maple node). */
export class TreeNode<V> {
  readonly line: MemoryLine;
  /**
   * The highest `end` in the subtree, per slot (the maple tree's pivots); valid up to `slots.length`.
   * A typed array, so a lookup reads contiguous doubles.
   */
  readonly pivots: Float64Array;
  /** Child nodes (internal) or entries (leaf). */
  slots: (TreeNode<V> | TreeEntry<V>)[];
  /** Reason the node was freed, or null while it is live. */
  poisoned: string | null = null;
  /** The lowest `start` in the subtree (+Infinity when empty). */
  low = Number.POSITIVE_INFINITY;
  /**
   * The largest gap between two consecutive entries inside the subtree (the maple tree's per-node gap
   * tracking), so a free-area search can skip subtrees whose gaps are all too small.
   */
  gap = 0;
  constructor(
    readonly leaf: boolean,
    /** The transaction that created the node; only that transaction may modify it in place. */
    readonly owner: number,
    pivots: ArrayLike<number>,
    slots: (TreeNode<V> | TreeEntry<V>)[],
    id: number,
  ) {
    this.pivots = new Float64Array(TREE_FANOUT + 1);
    for (let i = 0; i < slots.length; i++) this.pivots[i] = pivots[i];
    this.slots = slots;
    this.line = new MemoryLine(`maple_node#${id}`);
    this.summarize();
  }
  /** Recomputes `low` and `gap` from the slots (the children's summaries must be current). */
  summarize(): void {
    const n = this.slots.length;
    let gap = 0;
    if (n === 0) {
      this.low = Number.POSITIVE_INFINITY;
    } else if (this.leaf) {
      this.low = (this.slots[0] as TreeEntry<V>).start;
      for (let i = 1; i < n; i++) {
        const g = (this.slots[i] as TreeEntry<V>).start - this.pivots[i - 1];
        if (g > gap) gap = g;
      }
    } else {
      this.low = (this.slots[0] as TreeNode<V>).low;
      for (let i = 0; i < n; i++) {
        const c = this.slots[i] as TreeNode<V>;
        if (c.gap > gap) gap = c.gap;
        if (i > 0 && c.low - this.pivots[i - 1] > gap) gap = c.low - this.pivots[i - 1];
      }
    }
    this.gap = gap;
  }
  /** Marks the node freed (called by RCU after a grace period). */
  poison(reason: string): void {
    this.poisoned = reason;
  }
  get max(): number {
    return this.pivots[this.slots.length - 1];
  }
  /** Inserts a slot and its pivot at `i`. */
  insertAt(i: number, pivot: number, slot: TreeNode<V> | TreeEntry<V>): void {
    const n = this.slots.length;
    for (let j = n; j > i; j--) this.pivots[j] = this.pivots[j - 1];
    this.pivots[i] = pivot;
    this.slots.splice(i, 0, slot);
  }
  /** Removes slot `i`. */
  removeAt(i: number): void {
    const n = this.slots.length;
    for (let j = i; j < n - 1; j++) this.pivots[j] = this.pivots[j + 1];
    this.slots.splice(i, 1);
  }
}

function checkLive<V>(n: TreeNode<V>): void {
  if (n.poisoned !== null) {
    throw new UseAfterFreeError(`lockless VMA-tree walk read freed ${n.line.label} (${n.poisoned})`);
  }
}

/** First of the `n` slots whose pivot is greater than `addr` (the pivots are ascending), or `n`. */
function firstAbove(pivots: Float64Array, n: number, addr: number): number {
  let i = 0;
  while (i < n && pivots[i] <= addr) i++;
  return i;
}

/** The tree. `V` is the stored value (a VmArea for an mm). */
export class VmaTree<V> {
  /** The published root (mm->mm_mt.ma_root); `rootLine` is the word readers load it from. */
  root: TreeNode<V> | null = null;
  readonly rootLine: MemoryLine;
  private nextTx = 1;
  private nodeIds = 0;
  constructor(label = 'mm->mm_mt') {
    this.rootLine = new MemoryLine(label);
  }

  /** @internal */
  newNode(
    leaf: boolean,
    owner: number,
    pivots: ArrayLike<number>,
    slots: (TreeNode<V> | TreeEntry<V>)[],
  ): TreeNode<V> {
    return new TreeNode(leaf, owner, pivots, slots, this.nodeIds++);
  }

  /** Starts a write transaction (the caller holds the mmap lock for writing). */
  begin(): VmaTreeTx<V> {
    return new VmaTreeTx(this, this.nextTx++);
  }

  /**
   * The lowest entry whose end is above `addr` (find_vma() semantics: it contains `addr` or is the next one
   * above it), without any machine effects: the synchronous lookup for benchmarks and for writers.
   */
  find(addr: number): TreeEntry<V> | null {
    return findIn(this.root, addr);
  }

  /** The entry containing `addr` (vma_lookup()), or null. */
  lookup(addr: number): TreeEntry<V> | null {
    const e = this.find(addr);
    return e !== null && e.start <= addr ? e : null;
  }

  /** The highest entry whose end is at most `addr` (the VMA before a gap at `addr`), or null. */
  findPrev(addr: number): TreeEntry<V> | null {
    return this.root === null ? null : lastAtOrBelow(this.root, addr);
  }

  /**
   * The lookup a lock-free reader does under rcu_read_lock (the maple tree's mas_walk from lock-less
   * find_vma): loads the root pointer and every node it visits with a machine read, so a concurrent writer's
   * interleavings are visible, and reports a use-after-free if it reaches a freed node.
   */
  *findRcu(addr: number): Kernel<TreeEntry<V> | null> {
    yield readEffect(this.rootLine, 'mas_root');
    let n = this.root;
    if (n === null) return null;
    for (;;) {
      yield readEffect(n.line, 'mas_walk');
      checkLive(n);
      const i = firstAbove(n.pivots, n.slots.length, addr);
      if (i === n.slots.length) return null;
      const s = n.slots[i];
      if (n.leaf) return s as TreeEntry<V>;
      n = s as TreeNode<V>;
    }
  }

  /** Every entry in address order. */
  *entries(from = 0): Generator<TreeEntry<V>> {
    if (this.root !== null) yield* walk(this.root, from);
  }

  /**
   * The highest free range of at least `length` inside [lowLimit, highLimit), as the maple tree's
   * mas_empty_area_rev() finds it: returns the range's end (clipped to `highLimit`) and the entry just
   * above it (null if none), or null when nothing fits. O(log n) thanks to the per-node gap summaries.
   */
  gapAreaRev(
    length: number,
    lowLimit: number,
    highLimit: number,
  ): { end: number; next: TreeEntry<V> | null } | null {
    const fits = (a: number, b: number) => Math.min(b, highLimit) - Math.max(a, lowLimit) >= length;
    const root = this.root;
    if (root === null) return fits(0, Number.POSITIVE_INFINITY) ? { end: highLimit, next: null } : null;
    if (fits(root.max, Number.POSITIVE_INFINITY)) return { end: highLimit, next: null };
    const r = gapRev(root, length, lowLimit, highLimit);
    if (r !== null) return r;
    if (fits(0, root.low)) return { end: Math.min(root.low, highLimit), next: leftmost(root) };
    return null;
  }

  /** Entries in descending address order, starting with the last one whose start is below `before`. */
  *entriesReverse(before: number): Generator<TreeEntry<V>> {
    let e = this.findPrev(before);
    const above = this.find(before - 1);
    if (above !== null && above.start < before) e = above;
    while (e !== null) {
      yield e;
      e = this.findPrev(e.start);
    }
  }

  /** Number of entries (walks the tree). */
  count(): number {
    let c = 0;
    for (const _ of this.entries()) c++;
    return c;
  }

  /** Height of the tree (0 when empty). */
  height(): number {
    let h = 0;
    let n: TreeNode<V> | null = this.root;
    while (n !== null) {
      h++;
      n = n.leaf ? null : (n.slots[0] as TreeNode<V>);
    }
    return h;
  }

  /** Every live node (for checkers and tests). */
  nodes(): TreeNode<V>[] {
    const out: TreeNode<V>[] = [];
    const visit = (n: TreeNode<V>) => {
      out.push(n);
      if (!n.leaf) for (const c of n.slots) visit(c as TreeNode<V>);
    };
    if (this.root) visit(this.root);
    return out;
  }

  /**
   * Checks the structure: entries sorted and non-overlapping, pivots equal to subtree maxima, no empty
   * node, all leaves at one depth. Returns a list of problems (empty when sound).
   */
  validate(): string[] {
    const problems: string[] = [];
    let prevEnd = -1;
    let leafDepth = -1;
    const visit = (n: TreeNode<V>, depth: number) => {
      if (n.poisoned) problems.push(`${n.line.label} is reachable but freed (${n.poisoned})`);
      if (n.slots.length === 0) problems.push(`${n.line.label} is empty`);
      if (n.slots.length > TREE_FANOUT) problems.push(`${n.line.label} overflows`);
      const low = n.low;
      const gap = n.gap;
      n.summarize();
      if (n.low !== low || n.gap !== gap) problems.push(`${n.line.label} has a stale gap summary`);
      if (n.leaf) {
        if (leafDepth === -1) leafDepth = depth;
        else if (leafDepth !== depth)
          problems.push(`${n.line.label} is a leaf at depth ${depth}, not ${leafDepth}`);
        n.slots.forEach((s, i) => {
          const e = s as TreeEntry<V>;
          if (e.start >= e.end) problems.push(`entry [${hex(e.start)}, ${hex(e.end)}) is empty or inverted`);
          if (e.start < prevEnd)
            problems.push(`entry at ${hex(e.start)} overlaps or precedes the one ending at ${hex(prevEnd)}`);
          if (n.pivots[i] !== e.end) problems.push(`pivot ${hex(n.pivots[i])} != end ${hex(e.end)}`);
          prevEnd = e.end;
        });
      } else {
        n.slots.forEach((s, i) => {
          const c = s as TreeNode<V>;
          visit(c, depth + 1);
          if (c.slots.length > 0 && n.pivots[i] !== c.max) problems.push(`stale pivot in ${n.line.label}`);
        });
      }
    };
    if (this.root) visit(this.root, 0);
    return problems;
  }
}

/** The lowest entry under `root` whose end is above `addr` (find_vma() semantics), with no machine effects. */
function findIn<V>(root: TreeNode<V> | null, addr: number): TreeEntry<V> | null {
  let n = root;
  if (n === null) return null;
  for (;;) {
    const i = firstAbove(n.pivots, n.slots.length, addr);
    if (i === n.slots.length) return null;
    const s = n.slots[i];
    if (n.leaf) return s as TreeEntry<V>;
    n = s as TreeNode<V>;
  }
}

function* walk<V>(n: TreeNode<V>, from: number): Generator<TreeEntry<V>> {
  for (let i = firstAbove(n.pivots, n.slots.length, from); i < n.slots.length; i++) {
    const s = n.slots[i];
    if (n.leaf) yield s as TreeEntry<V>;
    else yield* walk(s as TreeNode<V>, from);
  }
}

function leftmost<V>(n: TreeNode<V>): TreeEntry<V> {
  while (!n.leaf) n = n.slots[0] as TreeNode<V>;
  return n.slots[0] as TreeEntry<V>;
}

/** The highest gap inside `n` that fits `length` within [lo, hi), searching right to left. */
function gapRev<V>(
  n: TreeNode<V>,
  length: number,
  lo: number,
  hi: number,
): { end: number; next: TreeEntry<V> | null } | null {
  const count = n.slots.length;
  for (let i = count - 1; i >= 0; i--) {
    if (i < count - 1) {
      // The gap between slot i and slot i+1.
      const a = n.pivots[i];
      const next = n.leaf ? (n.slots[i + 1] as TreeEntry<V>) : leftmost(n.slots[i + 1] as TreeNode<V>);
      const b = next.start;
      if (b <= lo) return null;
      if (a < hi && Math.min(b, hi) - Math.max(a, lo) >= length) return { end: Math.min(b, hi), next };
    }
    if (!n.leaf) {
      const c = n.slots[i] as TreeNode<V>;
      if (c.gap >= length && c.low < hi && n.pivots[i] > lo) {
        const r = gapRev(c, length, lo, hi);
        if (r !== null) return r;
      }
      if (c.low <= lo) return null;
    }
  }
  return null;
}

function rightmost<V>(n: TreeNode<V>): TreeEntry<V> {
  while (!n.leaf) n = n.slots[n.slots.length - 1] as TreeNode<V>;
  return n.slots[n.slots.length - 1] as TreeEntry<V>;
}

function lastAtOrBelow<V>(n: TreeNode<V>, addr: number): TreeEntry<V> | null {
  const i = firstAbove(n.pivots, n.slots.length, addr);
  if (n.leaf) {
    return i > 0 ? (n.slots[i - 1] as TreeEntry<V>) : null;
  }
  if (i < n.slots.length) {
    const r = lastAtOrBelow(n.slots[i] as TreeNode<V>, addr);
    if (r !== null) return r;
  }
  return i > 0 ? rightmost(n.slots[i - 1] as TreeNode<V>) : null;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * A write transaction on a {@link VmaTree}: a series of stores that become visible together at
 * {@link commit}. Models the effect of vma_iter_store()/mas_store_prealloc() with RCU-safe node
 * replacement (mas_wmb_replace + ma_free_rcu).
 */
export class VmaTreeTx<V> {
  private root: TreeNode<V> | null;
  /** Published nodes this transaction replaced; freed after a grace period once committed. */
  readonly retired: TreeNode<V>[] = [];
  private done = false;
  constructor(
    private readonly tree: VmaTree<V>,
    private readonly id: number,
  ) {
    this.root = tree.root;
  }

  private own(n: TreeNode<V>): TreeNode<V> {
    if (n.owner === this.id) return n;
    this.retired.push(n);
    return this.tree.newNode(n.leaf, this.id, n.pivots, n.slots.slice());
  }

  /** Inserts `[start, end) -> value`; the range must not overlap a stored entry. */
  insert(start: number, end: number, value: V): void {
    const e: TreeEntry<V> = { start, end, value };
    if (this.root === null) {
      this.root = this.tree.newNode(true, this.id, [end], [e]);
      return;
    }
    const left = this.own(this.root);
    this.root = left;
    const split = this.ins(left, e);
    if (split) {
      this.root = this.tree.newNode(false, this.id, [left.max, split.max], [left, split]);
    }
  }

  private ins(n: TreeNode<V>, e: TreeEntry<V>): TreeNode<V> | null {
    let i = firstAbove(n.pivots, n.slots.length, e.start);
    if (n.leaf) {
      n.insertAt(i, e.end, e);
    } else {
      if (i === n.slots.length) i--;
      const child = this.own(n.slots[i] as TreeNode<V>);
      n.slots[i] = child;
      const split = this.ins(child, e);
      n.pivots[i] = child.max;
      if (split) n.insertAt(i + 1, split.max, split);
    }
    if (n.slots.length <= TREE_FANOUT) {
      n.summarize();
      return null;
    }
    const half = n.slots.length >> 1;
    const right = this.tree.newNode(n.leaf, this.id, n.pivots.subarray(half), n.slots.slice(half));
    n.slots.length = half;
    n.summarize();
    return right;
  }

  /** Removes the entry stored with end `end` (the entry's key). Returns whether one was found. */
  remove(end: number): boolean {
    if (this.root === null) return false;
    const r = this.own(this.root);
    const found = this.rm(r, end);
    if (!found) {
      // Nothing changed; undo the copy of the root.
      if (r !== this.root) this.retired.pop();
      return false;
    }
    this.root = r;
    while (this.root !== null && !this.root.leaf && this.root.slots.length === 1) {
      this.root = this.root.slots[0] as TreeNode<V>;
    }
    if (this.root !== null && this.root.slots.length === 0) this.root = null;
    return true;
  }

  private rm(n: TreeNode<V>, end: number): boolean {
    const i = firstAbove(n.pivots, n.slots.length, end - 1);
    if (i === n.slots.length) return false;
    if (n.leaf) {
      if (n.pivots[i] !== end) return false;
      n.removeAt(i);
      n.summarize();
      return true;
    }
    const child = n.slots[i] as TreeNode<V>;
    const owned = this.own(child);
    if (!this.rm(owned, end)) {
      if (owned !== child) this.retired.pop();
      return false;
    }
    if (owned.slots.length === 0) {
      n.removeAt(i);
      n.summarize();
      return true;
    }
    n.slots[i] = owned;
    n.pivots[i] = owned.max;
    // Merge an underfull child into a sibling when both fit in one node, so the tree stays shallow.
    if (owned.slots.length < TREE_FANOUT / 4 && n.slots.length > 1) {
      const j = i > 0 ? i - 1 : i + 1;
      const sib = n.slots[j] as TreeNode<V>;
      if (sib.slots.length + owned.slots.length <= TREE_FANOUT) {
        const li = Math.min(i, j);
        const ri = Math.max(i, j);
        const left = this.own(n.slots[li] as TreeNode<V>);
        const right = n.slots[ri] as TreeNode<V>;
        if (right.owner !== this.id) this.retired.push(right);
        for (let k = 0; k < right.slots.length; k++)
          left.insertAt(left.slots.length, right.pivots[k], right.slots[k]);
        left.summarize();
        n.slots[li] = left;
        n.pivots[li] = left.max;
        n.removeAt(ri);
      }
    }
    n.summarize();
    return true;
  }

  /**
   * Replaces the entry stored with end `oldEnd` by `[start, end) -> value`. The new range must keep the
   * entry's position (no overlap with its neighbours); used when a VMA grows or shrinks in place.
   */
  update(oldEnd: number, start: number, end: number, value: V): boolean {
    if (!this.remove(oldEnd)) return false;
    this.insert(start, end, value);
    return true;
  }

  /** The entry whose end is above `addr`, as this transaction sees the tree. */
  find(addr: number): TreeEntry<V> | null {
    return findIn(this.root, addr);
  }

  /**
   * Publishes the new root with one store that lock-free readers can observe (rcu_assign_pointer), and
   * returns the nodes to free after a grace period.
   */
  *commitRcu(): Kernel<TreeNode<V>[]> {
    yield writeEffect(this.tree.rootLine, 'rcu_assign_pointer(ma_root)');
    return this.commit();
  }

  /** Publishes the new root without a machine effect (synchronous use) and returns the retired nodes. */
  commit(): TreeNode<V>[] {
    if (this.done)
      throw new Error('VmaTreeTx.commit called twice; start a new transaction with tree.begin()');
    this.done = true;
    this.tree.root = this.root;
    return this.retired;
  }
}
