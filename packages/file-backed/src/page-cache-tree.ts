import { RcuObject } from '@spf/locks';
import { type Kernel, MemoryLine, writeEffect } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import type { RcuLike } from '@spf/vma';

/** Slots per node (XA_CHUNK_SHIFT = 6 in lib/xarray.c). */
export const XA_CHUNK_SHIFT = 6;
export const XA_CHUNK_SIZE = 1 << XA_CHUNK_SHIFT;
const XA_CHUNK_MASK = XA_CHUNK_SIZE - 1;

/**
 * One node of the tree (`struct xa_node`): 64 slots, each a child node or (at the bottom) a page. A node
 * is an {@link RcuObject}: it is freed through RCU when it becomes empty, and a reader that still walks it
 * afterwards is caught as a use-after-free.
 */
export class XaNode extends RcuObject {
  readonly slots: (XaNode | Page | null)[] = new Array(XA_CHUNK_SIZE).fill(null);
  count = 0;
  /** `2 ** shift`: the indices one slot covers. */
  private readonly scale: number;
  /** The largest index a tree with this node on top holds (`2 ** (shift + XA_CHUNK_SHIFT) - 1`). */
  readonly maxIndex: number;
  constructor(
    /** Shift of the index bits this node decodes (0 at the bottom). */
    readonly shift: number,
    public parent: XaNode | null,
    /** Slot of this node in its parent. */
    public offset: number,
    id: number,
  ) {
    super(`xa_node#${id}`, new MemoryLine(`xa_node#${id}`));
    this.scale = 2 ** shift;
    this.maxIndex = 2 ** (shift + XA_CHUNK_SHIFT) - 1;
  }

  /** The slot `index` goes through in this node (`xas_descend()`'s offset). */
  slotOffset(index: number): number {
    return this.shift === 0 ? index & XA_CHUNK_MASK : Math.floor(index / this.scale) & XA_CHUNK_MASK;
  }

  /** The child node or (at the bottom) page `index` leads to in this node, or null. */
  slotFor(index: number): XaNode | Page | null {
    return this.slots[this.slotOffset(index)];
  }
}

let nodeIds = 0;

/**
 * The page cache of an address_space (`mapping->i_pages`, an xarray in lib/xarray.c, reduced to what the
 * page cache uses): a radix tree of 64-way nodes keyed by page index.
 *
 * Readers ({@link load}, {@link nextMiss}) take no lock: they must be inside an RCU read-side section (or
 * hold the tree lock). Writers ({@link store}, {@link erase}) hold the owner's `xa_lock`. A new node is
 * filled in before it is published with one store of its parent's slot (or of the root), so a lockless
 * reader sees the tree before or after the insertion, never half of it; an emptied node is unlinked with one
 * store and freed by `kfree_rcu()`, so a reader that found it before the unlink may finish its walk.
 *
 * Simplifications: no multi-index entries (each page is one index), no value entries (shadows, swap), no
 * marks (dirty/writeback tags); the tree does not shrink its height when the top node keeps one child.
 */
export class PageCacheTree {
  /** `xa_head`: the top node, null when empty. */
  private head: XaNode | null = null;
  /** Where `xa_head` lives (the address_space's cache line). */
  readonly line: MemoryLine;
  /** Pages stored. */
  count = 0;

  /**
   * @param freeNodes how emptied nodes are freed: `'rcu'` (Linux: `kfree_rcu()`, the default) or
   *   `'immediately'`, which is unsafe (a lockless reader may still walk the node) and exists so that tests
   *   can show the explorer catching the use-after-free the grace period prevents.
   */
  constructor(
    label: string,
    private readonly rcu: RcuLike,
    readonly freeNodes: 'rcu' | 'immediately' = 'rcu',
  ) {
    this.line = new MemoryLine(`${label}.i_pages`);
  }

  /** The largest index the current height can hold. */
  private maxIndex(): number {
    return this.head === null ? -1 : this.head.maxIndex;
  }

  /**
   * The node a walk for `index` starts at: the top node, or null if the tree is empty or too low to hold
   * `index`. Reads `xa_head`: call it after the load of {@link line}.
   */
  rootFor(index: number): XaNode | null {
    const node = this.head;
    return node !== null && index <= node.maxIndex ? node : null;
  }

  /**
   * Models `xa_load()`: the page at `index`, or null. Lockless: call inside `rcu_read_lock()`; the page
   * may be freed from the cache right after (take a reference with `folio_try_get()` and re-check).
   * `AddressSpace.getFolio()` runs the same walk inlined.
   */
  *load(index: number): Kernel<Page | null> {
    yield this.line.readEffect;
    let node = this.rootFor(index);
    if (node === null) return null;
    for (;;) {
      // RcuObject.touch() inlined (hot path): a load of the node, then the use-after-free check.
      yield node.line.readEffect;
      node.checkAlive('xa_load');
      const slot = node.slotFor(index);
      if (slot === null) return null;
      if (node.shift === 0) return slot as Page;
      node = slot as XaNode;
    }
  }

  /** The page at `index` without machine effects (for checks, dumps and tests). */
  peek(index: number): Page | null {
    let node = this.rootFor(index);
    if (node === null) return null;
    for (;;) {
      const slot = node.slotFor(index);
      if (slot === null) return null;
      if (node.shift === 0) return slot as Page;
      node = slot as XaNode;
    }
  }

  /** Every (index, page) stored, in index order, without machine effects. */
  entries(): [number, Page][] {
    const out: [number, Page][] = [];
    const walk = (n: XaNode, base: number): void => {
      for (let i = 0; i < XA_CHUNK_SIZE; i++) {
        const s = n.slots[i];
        if (s === null) continue;
        const idx = base + i * 2 ** n.shift;
        if (n.shift === 0) out.push([idx, s as Page]);
        else walk(s as XaNode, idx);
      }
    };
    if (this.head !== null) walk(this.head, 0);
    return out;
  }

  /**
   * Models `xa_store()` of a page into an empty slot (the page cache's `__filemap_add_folio()`); the caller
   * holds the xa_lock and has checked the slot is empty. Grows the tree (a new top node above the old one,
   * published by one store of the head) and creates the missing nodes on the way down, each filled in before
   * its parent's slot is stored.
   */
  *store(index: number, page: Page): Kernel<void> {
    if (!Number.isInteger(index) || index < 0) {
      throw new RangeError(`page cache index ${index}; give an integer >= 0`);
    }
    if (this.head === null) {
      let shift = 0;
      while (index > 2 ** (shift + XA_CHUNK_SHIFT) - 1) shift += XA_CHUNK_SHIFT;
      const n = new XaNode(shift, null, 0, nodeIds++);
      yield writeEffect(n.line, 'xa_node init');
      this.head = n;
      yield writeEffect(this.line, 'xa_head publish');
    }
    while (index > this.maxIndex()) {
      const old = this.head as XaNode;
      const top = new XaNode(old.shift + XA_CHUNK_SHIFT, null, 0, nodeIds++);
      if (old.count > 0) {
        top.slots[0] = old;
        top.count = 1;
        old.parent = top;
        old.offset = 0;
      }
      yield writeEffect(top.line, 'xa_node init');
      this.head = top;
      yield writeEffect(this.line, 'xa_head publish');
    }
    let node = this.head as XaNode;
    while (node.shift > 0) {
      const off = node.slotOffset(index);
      let child = node.slots[off] as XaNode | null;
      if (child === null) {
        child = new XaNode(node.shift - XA_CHUNK_SHIFT, node, off, nodeIds++);
        yield writeEffect(child.line, 'xa_node init');
        node.slots[off] = child;
        node.count++;
        yield writeEffect(node.line, 'xa_store node');
      }
      node = child;
    }
    const off = index & XA_CHUNK_MASK;
    if (node.slots[off] !== null) throw new Error(`page cache index ${index} is already occupied`);
    node.slots[off] = page;
    node.count++;
    this.count++;
    yield writeEffect(node.line, 'xa_store');
  }

  /**
   * Models `xa_erase()` of the page at `index` (`page_cache_delete()`); the caller holds the xa_lock.
   * Emptied nodes are unlinked by one store and freed through `kfree_rcu()`.
   */
  *erase(index: number): Kernel<Page | null> {
    let node = this.head;
    if (node === null || index > this.maxIndex()) return null;
    while (node.shift > 0) {
      const next = node.slotFor(index) as XaNode | null;
      if (next === null) return null;
      node = next;
    }
    const off = index & XA_CHUNK_MASK;
    const page = node.slots[off] as Page | null;
    if (page === null) return null;
    node.slots[off] = null;
    node.count--;
    this.count--;
    yield writeEffect(node.line, 'xa_erase');
    // Free the nodes that became empty, bottom up.
    let n: XaNode = node;
    while (n.count === 0) {
      const parent = n.parent;
      if (parent === null) {
        this.head = null;
        yield writeEffect(this.line, 'xa_head clear');
      } else {
        parent.slots[n.offset] = null;
        parent.count--;
        yield writeEffect(parent.line, 'xa_delete_node');
      }
      if (this.freeNodes === 'rcu') yield* this.rcu.kfreeRcu(n, n.label);
      else n.poison(`xa_delete_node without a grace period (${n.label})`);
      if (parent === null) break;
      n = parent;
    }
    return page;
  }

  /**
   * Models `page_cache_next_miss()`: the first index in [index, index + maxScan) with no page, or
   * `index + maxScan` if all are present. Lockless (RCU).
   */
  *nextMiss(index: number, maxScan: number): Kernel<number> {
    for (let i = 0; i < maxScan; i++) {
      if ((yield* this.load(index + i)) === null) return index + i;
    }
    return index + maxScan;
  }

  /**
   * Models `page_cache_prev_miss()`: the last index in (index - maxScan, index] with no page, scanning
   * backwards; -1 (Linux's ULONG_MAX) if it reached index 0 without a gap, or `index - maxScan` otherwise.
   */
  *prevMiss(index: number, maxScan: number): Kernel<number> {
    for (let i = 0; i < maxScan; i++) {
      if (index - i < 0) return -1;
      if ((yield* this.load(index - i)) === null) return index - i;
    }
    return index - maxScan < 0 ? -1 : index - maxScan;
  }
}
