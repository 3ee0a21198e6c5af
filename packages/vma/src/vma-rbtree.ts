import { type Kernel, MemoryLine, readEffect, writeEffect } from '@spf/machine';
import type { VmArea } from './vm-area.js';

/** `RB_RED` and `RB_BLACK` of include/linux/rbtree_augmented.h: the colour bit of `__rb_parent_color`. */
export const RB_RED = 0;
export const RB_BLACK = 1;
export type RbColor = typeof RB_RED | typeof RB_BLACK;

/**
 * `struct rb_node vm_rb` of a VMA in Linux 5.1 (include/linux/rbtree.h): `__rb_parent_color` (the parent
 * pointer and the colour bit, one word, so one store sets both), `rb_left` and `rb_right`. The node is
 * embedded in the `vm_area_struct`, so its fields live on the VMA's memory line (`vma.line`), next to
 * `vm_start` and `vm_end`: each store to them is a machine write on that line, each load a lockless walker
 * makes a machine read of it.
 */
export class VmaRbNode {
  /** The parent half of `__rb_parent_color` (null for the root). */
  parent: VmaRbNode | null = null;
  /** The colour half of `__rb_parent_color`. */
  color: RbColor = RB_RED;
  /** `rb_left`. */
  left: VmaRbNode | null = null;
  /** `rb_right`. */
  right: VmaRbNode | null = null;
  /** Unlinked from the tree (`RB_CLEAR_NODE()` after `rb_erase()`); its child pointers are left as they were. */
  erased = false;
  constructor(readonly vma: VmArea) {}
}

/**
 * The VMA rbtree of Linux 5.1, `mm->mm_rb` (mm/mmap.c on lib/rbtree.c), which Dufour's SPF v12 walked
 * without mmap_sem. Nodes are ordered by address; the writer (who holds mmap_lock for writing) inserts with
 * `__vma_link_rb()` (`rb_link_node()` then `__rb_insert()`) and removes with `rb_erase_augmented()`
 * (`__rb_erase_augmented()` then `____rb_erase_color()`), every store in the order lib/rbtree.c and
 * include/linux/rbtree_augmented.h make it, each its own machine write. The writer's own loads of node
 * fields are plain JavaScript (it holds the lock: nobody else stores to the tree).
 *
 * A lockless walker ({@link findRcu}, `find_vma()`'s loop) follows `rb_left`/`rb_right` one machine read per
 * node. lib/rbtree.c stores child pointers with `WRITE_ONCE()` in an order that never makes the structure
 * loop, so such a walk always ends and only reaches nodes that are or were in the tree (RCU keeps erased ones
 * allocated), but a rotation is several stores: a walk that passes between them can miss a subtree and
 * return a wrong answer (lib/rbtree.c's "Notes on lockless lookups"; include/linux/rbtree_latch.h). SPF v12
 * therefore wrapped every update in `mm->mm_seq` and `find_vma_rcu()` repeated its walk while it changed.
 *
 * Simplifications: the augmented `rb_subtree_gap` (`vma_gap_callbacks`: its propagate, copy and rotate
 * stores) is not kept (the free-area search uses the B+tree's gap summaries, and `find_vma()` never reads
 * it); the per-thread `vmacache` that `find_vma()` tries first is not modelled.
 */
export class VmaRbTree {
  /** `mm->mm_rb.rb_node`; `rootLine` is the word it lives in. */
  root: VmaRbNode | null = null;
  readonly rootLine: MemoryLine;
  /** Writer-side bookkeeping: the node of each linked VMA (Linux reaches it as `&vma->vm_rb`). */
  private readonly nodes = new Map<VmArea, VmaRbNode>();

  constructor(label = 'mm->mm_rb') {
    this.rootLine = new MemoryLine(label);
  }

  /** The number of linked VMAs. */
  get size(): number {
    return this.nodes.size;
  }

  /** Whether `vma` is linked. */
  has(vma: VmArea): boolean {
    return this.nodes.has(vma);
  }

  /** The node of a linked VMA, or undefined (for tests and checkers). */
  nodeOf(vma: VmArea): VmaRbNode | undefined {
    return this.nodes.get(vma);
  }

  /**
   * The loop of Linux 5.1's `find_vma()` (mm/mmap.c) run without mmap_sem, as SPF v12's `find_vma_rcu()`
   * runs it under `rcu_read_lock()`: from `mm->mm_rb.rb_node`, at each node read its `vm_end`, `vm_start` and
   * the child pointer to follow (one machine read of the VMA's line); if `vm_end > addr` remember the VMA
   * and stop when `vm_start <= addr`, else go left; otherwise go right. Returns the VMA remembered last: the
   * first VMA ending above `addr` when no writer ran meanwhile, possibly a wrong one (or null) when a
   * rotation ran under the walk. Reaching a freed VMA is reported as a use-after-free. The caller holds
   * rcu_read_lock.
   */
  *findRcu(addr: number): Kernel<VmArea | null> {
    yield readEffect(this.rootLine, 'find_vma: mm_rb.rb_node');
    let n = this.root;
    let found: VmArea | null = null;
    while (n !== null) {
      const vma = n.vma;
      yield readEffect(vma.line, 'find_vma: vm_end, vm_start, rb_left/rb_right');
      vma.checkLive('find_vma (lockless rbtree walk)');
      if (vma.vmEnd > addr) {
        found = vma;
        if (vma.vmStart <= addr) break;
        n = n.left;
      } else n = n.right;
    }
    return found;
  }

  /** Every linked VMA in address order (writer side, no effects). */
  *vmas(): Generator<VmArea> {
    const stack: VmaRbNode[] = [];
    let n = this.root;
    while (n !== null || stack.length > 0) {
      while (n !== null) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop() as VmaRbNode;
      yield top.vma;
      n = top.right;
    }
  }

  // ---- the writer's stores, each one machine write ----

  private *setParentColor(node: VmaRbNode, parent: VmaRbNode | null, color: RbColor): Kernel<void> {
    yield writeEffect(node.vma.line, 'rb_set_parent_color');
    node.parent = parent;
    node.color = color;
  }

  /** `rb_set_parent()`: the parent changes, the colour stays (one store of `__rb_parent_color`). */
  private *setParent(node: VmaRbNode, parent: VmaRbNode | null): Kernel<void> {
    yield writeEffect(node.vma.line, 'rb_set_parent');
    node.parent = parent;
  }

  private *setLeft(node: VmaRbNode, child: VmaRbNode | null): Kernel<void> {
    yield writeEffect(node.vma.line, 'WRITE_ONCE(rb_left)');
    node.left = child;
  }

  private *setRight(node: VmaRbNode, child: VmaRbNode | null): Kernel<void> {
    yield writeEffect(node.vma.line, 'WRITE_ONCE(rb_right)');
    node.right = child;
  }

  /** `__rb_change_child()` (include/linux/rbtree_augmented.h): `parent`'s link to `old` now points to `nu`. */
  private *changeChild(old: VmaRbNode, nu: VmaRbNode | null, parent: VmaRbNode | null): Kernel<void> {
    if (parent === null) {
      yield writeEffect(this.rootLine, 'WRITE_ONCE(mm_rb.rb_node)');
      this.root = nu;
    } else if (parent.left === old) yield* this.setLeft(parent, nu);
    else yield* this.setRight(parent, nu);
  }

  /**
   * `__rb_rotate_set_parents()` (lib/rbtree.c): `nu` takes `old`'s parent and colour, `old` gets `nu` as
   * parent and `color`, then `old`'s parent (or the root) points to `nu`.
   */
  private *rotateSetParents(old: VmaRbNode, nu: VmaRbNode, color: RbColor): Kernel<void> {
    const parent = old.parent;
    yield* this.setParentColor(nu, old.parent, old.color);
    yield* this.setParentColor(old, nu, color);
    yield* this.changeChild(old, nu, parent);
  }

  // ---- insert ----

  /**
   * Links `vma` (which must not overlap a linked VMA) as `__vma_link_rb()` does: finds its place as
   * `find_vma_links()` does, `rb_link_node()` (the new node's fields are set before it is reachable, so
   * only the store that links it is a machine write), then `__rb_insert()` rebalances.
   */
  *insert(vma: VmArea): Kernel<void> {
    let parent: VmaRbNode | null = null;
    let left = false;
    let n = this.root;
    while (n !== null) {
      parent = n;
      left = n.vma.vmEnd > vma.vmStart;
      n = left ? n.left : n.right;
    }
    const node = new VmaRbNode(vma);
    this.nodes.set(vma, node);
    node.parent = parent; // rb_link_node(): __rb_parent_color = parent (red), rb_left = rb_right = NULL
    if (parent === null) {
      yield writeEffect(this.rootLine, 'rb_link_node: mm_rb.rb_node = node');
      this.root = node;
    } else if (left) yield* this.setLeft(parent, node);
    else yield* this.setRight(parent, node);
    yield* this.rebalanceInsert(node);
  }

  /** `__rb_insert()` of lib/rbtree.c (Linux 5.1), with `augment_rotate` a no-op. Loop invariant: node is red. */
  private *rebalanceInsert(start: VmaRbNode): Kernel<void> {
    let node = start;
    let parent = node.parent;
    for (;;) {
      if (parent === null) {
        // The node is the root: the first node, or we recursed at case 1.
        yield* this.setParentColor(node, null, RB_BLACK);
        return;
      }
      if (parent.color === RB_BLACK) return;
      const gparent = parent.parent as VmaRbNode; // a red node is never the root
      let tmp = gparent.right;
      if (parent !== tmp) {
        // parent is gparent's left child.
        if (tmp !== null && tmp.color === RB_RED) {
          // Case 1: the uncle is red: colour flips, recurse at gparent.
          yield* this.setParentColor(tmp, gparent, RB_BLACK);
          yield* this.setParentColor(parent, gparent, RB_BLACK);
          node = gparent;
          parent = node.parent;
          yield* this.setParentColor(node, parent, RB_RED);
          continue;
        }
        tmp = parent.right;
        if (node === tmp) {
          // Case 2: node is parent's right child: left rotate at parent.
          tmp = node.left;
          yield* this.setRight(parent, tmp);
          yield* this.setLeft(node, parent);
          if (tmp !== null) yield* this.setParentColor(tmp, parent, RB_BLACK);
          yield* this.setParentColor(parent, node, RB_RED);
          parent = node;
          tmp = node.right;
        }
        // Case 3: node is parent's left child: right rotate at gparent.
        yield* this.setLeft(gparent, tmp);
        yield* this.setRight(parent, gparent);
        if (tmp !== null) yield* this.setParentColor(tmp, gparent, RB_BLACK);
        yield* this.rotateSetParents(gparent, parent, RB_RED);
        return;
      }
      // parent is gparent's right child: the mirror image.
      tmp = gparent.left;
      if (tmp !== null && tmp.color === RB_RED) {
        yield* this.setParentColor(tmp, gparent, RB_BLACK);
        yield* this.setParentColor(parent, gparent, RB_BLACK);
        node = gparent;
        parent = node.parent;
        yield* this.setParentColor(node, parent, RB_RED);
        continue;
      }
      tmp = parent.left;
      if (node === tmp) {
        // Case 2: right rotate at parent.
        tmp = node.right;
        yield* this.setLeft(parent, tmp);
        yield* this.setRight(node, parent);
        if (tmp !== null) yield* this.setParentColor(tmp, parent, RB_BLACK);
        yield* this.setParentColor(parent, node, RB_RED);
        parent = node;
        tmp = node.left;
      }
      // Case 3: left rotate at gparent.
      yield* this.setRight(gparent, tmp);
      yield* this.setLeft(parent, gparent);
      if (tmp !== null) yield* this.setParentColor(tmp, gparent, RB_BLACK);
      yield* this.rotateSetParents(gparent, parent, RB_RED);
      return;
    }
  }

  // ---- erase ----

  /**
   * Unlinks `vma` as `rb_erase_augmented()` does: `__rb_erase_augmented()` takes the node out (splicing in
   * its successor when it has two children), then `____rb_erase_color()` rebalances if a black node went.
   * The erased node keeps its child pointers (a walker standing on it may go on into the tree); it is marked
   * {@link VmaRbNode.erased} (`RB_CLEAR_NODE()`). Returns false if `vma` was not linked.
   */
  *erase(vma: VmArea): Kernel<boolean> {
    const node = this.nodes.get(vma);
    if (node === undefined) return false;
    this.nodes.delete(vma);
    const rebalance = yield* this.eraseNode(node);
    if (rebalance !== null) yield* this.eraseColor(rebalance);
    node.erased = true;
    return true;
  }

  /** `__rb_erase_augmented()` (include/linux/rbtree_augmented.h), with no-op augment callbacks. */
  private *eraseNode(node: VmaRbNode): Kernel<VmaRbNode | null> {
    const child = node.right;
    let tmp = node.left;
    if (tmp === null) {
      // Case 1: at most one child (the right one).
      const pcParent = node.parent;
      const pcColor = node.color;
      yield* this.changeChild(node, child, pcParent);
      if (child !== null) {
        yield* this.setParentColor(child, pcParent, pcColor);
        return null;
      }
      return pcColor === RB_BLACK ? pcParent : null;
    }
    if (child === null) {
      // Still case 1, the child is the left one.
      const pcParent = node.parent;
      yield* this.setParentColor(tmp, pcParent, node.color);
      yield* this.changeChild(node, tmp, pcParent);
      return null;
    }
    let successor = child;
    let parent: VmaRbNode;
    let child2: VmaRbNode | null;
    tmp = child.left;
    if (tmp === null) {
      // Case 2: the successor is node's right child.
      parent = successor;
      child2 = successor.right;
    } else {
      // Case 3: the successor is the leftmost node under node's right child.
      do {
        parent = successor;
        successor = tmp;
        tmp = tmp.left;
      } while (tmp !== null);
      child2 = successor.right;
      yield* this.setLeft(parent, child2);
      yield* this.setRight(successor, child);
      yield* this.setParent(child, successor);
    }
    tmp = node.left as VmaRbNode;
    yield* this.setLeft(successor, tmp);
    yield* this.setParent(tmp, successor);
    const pcParent = node.parent;
    const pcColor = node.color;
    yield* this.changeChild(node, successor, pcParent);
    // The successor takes node's parent and colour first, then child2 (if any) its new parent, black.
    const successorColor = successor.color;
    yield* this.setParentColor(successor, pcParent, pcColor);
    if (child2 !== null) {
      yield* this.setParentColor(child2, parent, RB_BLACK);
      return null;
    }
    return successorColor === RB_BLACK ? parent : null;
  }

  /**
   * `____rb_erase_color()` (lib/rbtree.c), with `augment_rotate` a no-op. Loop invariants: node is black (or
   * null on the first pass) and not the root; every path through parent and node has one black node fewer
   * than the others.
   */
  private *eraseColor(start: VmaRbNode): Kernel<void> {
    let parent = start;
    let node: VmaRbNode | null = null;
    for (;;) {
      let sibling = parent.right as VmaRbNode;
      if (node !== sibling) {
        // node is parent's left child.
        if (sibling.color === RB_RED) {
          // Case 1: left rotate at parent.
          const tmp1 = sibling.left as VmaRbNode;
          yield* this.setRight(parent, tmp1);
          yield* this.setLeft(sibling, parent);
          yield* this.setParentColor(tmp1, parent, RB_BLACK);
          yield* this.rotateSetParents(parent, sibling, RB_RED);
          sibling = tmp1;
        }
        let tmp1 = sibling.right;
        if (tmp1 === null || tmp1.color === RB_BLACK) {
          const tmp2 = sibling.left;
          if (tmp2 === null || tmp2.color === RB_BLACK) {
            // Case 2: sibling colour flip.
            yield* this.setParentColor(sibling, parent, RB_RED);
            if (parent.color === RB_RED) {
              yield writeEffect(parent.vma.line, 'rb_set_black');
              parent.color = RB_BLACK;
            } else {
              node = parent;
              const up = node.parent;
              if (up !== null) {
                parent = up;
                continue;
              }
            }
            return;
          }
          // Case 3: right rotate at sibling.
          tmp1 = tmp2.right;
          yield* this.setLeft(sibling, tmp1);
          yield* this.setRight(tmp2, sibling);
          yield* this.setRight(parent, tmp2);
          if (tmp1 !== null) yield* this.setParentColor(tmp1, sibling, RB_BLACK);
          tmp1 = sibling;
          sibling = tmp2;
        }
        // Case 4: left rotate at parent and colour flips.
        const tmp2 = sibling.left;
        yield* this.setRight(parent, tmp2);
        yield* this.setLeft(sibling, parent);
        yield* this.setParentColor(tmp1 as VmaRbNode, sibling, RB_BLACK);
        if (tmp2 !== null) yield* this.setParent(tmp2, parent);
        yield* this.rotateSetParents(parent, sibling, RB_BLACK);
        return;
      }
      // node is parent's right child: the mirror image.
      sibling = parent.left as VmaRbNode;
      if (sibling.color === RB_RED) {
        // Case 1: right rotate at parent.
        const tmp1 = sibling.right as VmaRbNode;
        yield* this.setLeft(parent, tmp1);
        yield* this.setRight(sibling, parent);
        yield* this.setParentColor(tmp1, parent, RB_BLACK);
        yield* this.rotateSetParents(parent, sibling, RB_RED);
        sibling = tmp1;
      }
      let tmp1 = sibling.left;
      if (tmp1 === null || tmp1.color === RB_BLACK) {
        const tmp2 = sibling.right;
        if (tmp2 === null || tmp2.color === RB_BLACK) {
          // Case 2: sibling colour flip.
          yield* this.setParentColor(sibling, parent, RB_RED);
          if (parent.color === RB_RED) {
            yield writeEffect(parent.vma.line, 'rb_set_black');
            parent.color = RB_BLACK;
          } else {
            node = parent;
            const up = node.parent;
            if (up !== null) {
              parent = up;
              continue;
            }
          }
          return;
        }
        // Case 3: left rotate at sibling.
        tmp1 = tmp2.left;
        yield* this.setRight(sibling, tmp1);
        yield* this.setLeft(tmp2, sibling);
        yield* this.setLeft(parent, tmp2);
        if (tmp1 !== null) yield* this.setParentColor(tmp1, sibling, RB_BLACK);
        tmp1 = sibling;
        sibling = tmp2;
      }
      // Case 4: right rotate at parent and colour flips.
      const tmp2 = sibling.right;
      yield* this.setLeft(parent, tmp2);
      yield* this.setRight(sibling, parent);
      yield* this.setParentColor(tmp1 as VmaRbNode, sibling, RB_BLACK);
      if (tmp2 !== null) yield* this.setParent(tmp2, parent);
      yield* this.rotateSetParents(parent, sibling, RB_BLACK);
      return;
    }
  }

  /**
   * Checks the tree: an address-ordered binary search tree whose in-order walk is `expected` (when given),
   * parent pointers that match the child links, a black root, no red node with a red child, and the same
   * number of black nodes on every path. Returns the problems found (empty when sound).
   */
  validate(expected?: readonly VmArea[]): string[] {
    const problems: string[] = [];
    if (this.root !== null && this.root.parent !== null) problems.push('the root has a parent');
    if (this.root !== null && this.root.color !== RB_BLACK) problems.push('the root is red');
    let blackHeight = -1;
    // The in-order walk, gathered by the same visit (which stops at a node seen before: a loop cannot hang it).
    const order: VmArea[] = [];
    const visit = (n: VmaRbNode | null, parent: VmaRbNode | null, blacks: number, seen: Set<VmaRbNode>) => {
      if (n === null) {
        if (blackHeight === -1) blackHeight = blacks;
        else if (blackHeight !== blacks)
          problems.push(`a path has ${blacks} black nodes, another ${blackHeight}`);
        return;
      }
      if (seen.has(n)) {
        problems.push(`${n.vma} is reachable twice (a loop)`);
        return;
      }
      seen.add(n);
      if (n.erased) problems.push(`${n.vma} is reachable but erased`);
      if (n.parent !== parent) problems.push(`${n.vma}'s parent pointer is wrong`);
      if (n.color === RB_RED && parent !== null && parent.color === RB_RED)
        problems.push(`red ${n.vma} has a red parent`);
      if (this.nodes.get(n.vma) !== n) problems.push(`${n.vma} is linked but not in the node map`);
      const b = blacks + (n.color === RB_BLACK ? 1 : 0);
      visit(n.left, n, b, seen);
      order.push(n.vma);
      visit(n.right, n, b, seen);
    };
    visit(this.root, null, 0, new Set());
    for (let i = 1; i < order.length; i++) {
      if (order[i - 1].vmEnd > order[i].vmStart) problems.push(`${order[i - 1]} is not below ${order[i]}`);
    }
    if (order.length !== this.nodes.size)
      problems.push(`${order.length} VMAs reachable, ${this.nodes.size} linked`);
    if (expected !== undefined) {
      const same = expected.length === order.length && expected.every((v, i) => order[i] === v);
      if (!same)
        problems.push(`in-order walk [${order.join(', ')}] is not the expected [${expected.join(', ')}]`);
    }
    return problems;
  }
}
