/**
 * An augmented interval tree over half-open ranges [start, end), like include/linux/interval_tree.h (an
 * rbtree ordered by start whose nodes also keep the largest end of their subtree). We balance it as a
 * treap with priorities hashed from an insertion number, so its shape is deterministic.
 *
 * Plain data structure: it performs no machine effects; callers charge the accesses.
 */
export class IntervalTree<T> {
  private root: IntervalNode<T> | null = null;
  private inserted = 0;
  private count = 0;

  /** Number of intervals stored. */
  get size(): number {
    return this.count;
  }

  /** Inserts [start, end) carrying `value`; returns the node, which {@link remove} takes. */
  insert(start: number, end: number, value: T): IntervalNode<T> {
    if (!(start < end)) throw new RangeError(`an interval needs start < end, got [${start}, ${end})`);
    const n = new IntervalNode(start, end, value, hashPriority(++this.inserted));
    this.root = insertNode(this.root, n);
    this.count++;
    return n;
  }

  /** Removes a node returned by {@link insert}. */
  remove(node: IntervalNode<T>): void {
    if (!contains(this.root, node)) {
      throw new RangeError(`interval [${node.start}, ${node.end}) is not in this tree`);
    }
    this.root = removeNode(this.root, node);
    this.count--;
  }

  /** Calls `f` for every stored interval that overlaps [start, end), in order of start. */
  forEachOverlap(start: number, end: number, f: (n: IntervalNode<T>) => void): void {
    visit(this.root, start, end, f);
  }

  /** Every interval overlapping [start, end). */
  overlaps(start: number, end: number): IntervalNode<T>[] {
    const out: IntervalNode<T>[] = [];
    this.forEachOverlap(start, end, (n) => out.push(n));
    return out;
  }

  /** All intervals in order of start. */
  toArray(): IntervalNode<T>[] {
    return this.overlaps(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  }
}

/** One interval of an {@link IntervalTree}. */
export class IntervalNode<T> {
  left: IntervalNode<T> | null = null;
  right: IntervalNode<T> | null = null;
  /** Largest `end` in this subtree (the augmentation, `__subtree_last`). */
  maxEnd: number;
  constructor(
    readonly start: number,
    readonly end: number,
    readonly value: T,
    readonly priority: number,
  ) {
    this.maxEnd = end;
  }
}

function hashPriority(n: number): number {
  let h = Math.imul(n ^ 0x5bd1e995, 0x9e3779b1);
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}

function update<T>(n: IntervalNode<T>): void {
  let m = n.end;
  if (n.left && n.left.maxEnd > m) m = n.left.maxEnd;
  if (n.right && n.right.maxEnd > m) m = n.right.maxEnd;
  n.maxEnd = m;
}

function rotateRight<T>(n: IntervalNode<T>): IntervalNode<T> {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft<T>(n: IntervalNode<T>): IntervalNode<T> {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

function insertNode<T>(root: IntervalNode<T> | null, n: IntervalNode<T>): IntervalNode<T> {
  if (root === null) return n;
  if (n.start < root.start) {
    root.left = insertNode(root.left, n);
    if (root.left.priority > root.priority) return rotateRight(root);
  } else {
    root.right = insertNode(root.right, n);
    if (root.right.priority > root.priority) return rotateLeft(root);
  }
  update(root);
  return root;
}

function removeNode<T>(root: IntervalNode<T> | null, n: IntervalNode<T>): IntervalNode<T> | null {
  if (root === null) return null;
  if (root === n) {
    if (root.left === null) return root.right;
    if (root.right === null) return root.left;
    if (root.left.priority > root.right.priority) {
      const r = rotateRight(root);
      r.right = removeNode(r.right, n);
      update(r);
      return r;
    }
    const r = rotateLeft(root);
    r.left = removeNode(r.left, n);
    update(r);
    return r;
  }
  // Equal starts may sit on either side after rotations: search both when needed.
  if (n.start < root.start) root.left = removeNode(root.left, n);
  else if (n.start > root.start) root.right = removeNode(root.right, n);
  else if (contains(root.right, n)) root.right = removeNode(root.right, n);
  else root.left = removeNode(root.left, n);
  update(root);
  return root;
}

function contains<T>(root: IntervalNode<T> | null, n: IntervalNode<T>): boolean {
  if (root === null) return false;
  if (root === n) return true;
  if (n.start < root.start) return contains(root.left, n);
  if (n.start > root.start) return contains(root.right, n);
  return contains(root.left, n) || contains(root.right, n);
}

function visit<T>(
  n: IntervalNode<T> | null,
  start: number,
  end: number,
  f: (n: IntervalNode<T>) => void,
): void {
  if (n === null || n.maxEnd <= start) return;
  visit(n.left, start, end, f);
  if (n.start < end && n.end > start) f(n);
  if (n.start < end) visit(n.right, start, end, f);
}
