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
 * Readers ({@link load}, {@link nextMiss}, an {@link XaState} cursor) take no lock: they must be inside an RCU read-side section (or
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
   * may be freed from the cache right after (take a reference with `folio_try_get()` and re-check). The walk
   * is {@link XaState.load}'s.
   */
  *load(index: number): Kernel<Page | null> {
    return yield* new XaState(this, index).load();
  }

  /** `xa_head`, the top node (null when the tree is empty), without a machine effect: for {@link XaState}. */
  top(): XaNode | null {
    return this.head;
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

/** `XAS_RESTART` (include/linux/xarray.h): a cursor that has not walked the tree yet (or was reset). */
export const XAS_RESTART = 'restart';
/** `XAS_BOUNDS`: a cursor that went past the end of the tree or of its range. */
export const XAS_BOUNDS = 'bounds';

/**
 * Models `struct xa_state` (include/linux/xarray.h) on a {@link PageCacheTree}: a cursor holding an index and
 * the node a walk for it ended in (`xa_node`, with the slot `xa_offset`), so that the next operations read
 * that node again instead of walking from the root. Lockless, like the tree's readers: use it inside
 * `rcu_read_lock()`.
 *
 * Each node is one {@link MemoryLine} in this model (a real `xa_node` spans nine cache lines: the header with
 * the parent pointer, then 64 slots); so every read of a node, header or slot, is one load of that line,
 * followed by the use-after-free check a KASAN-like checker would make ({@link XaNode.checkAlive}):
 *
 * - {@link load} (`xas_reset()` + `xas_load()`): a walk from `xa_head`, one load of the head and one of each
 *   node on the way down, recording the last node;
 * - {@link reload} (`xas_reload()`): one load of the recorded node (of `xa_head` if the walk ended there);
 * - {@link nextEntry} (`xas_next_entry()`): the next present entry up to `max`; a step to the next index in
 *   the same bottom node is one load of that node, and the hard cases go to {@link find} (`xas_find()`),
 *   which climbs to the parent when a node is done (one load of the node for its parent pointer) and
 *   descends into the next child, one load per slot read.
 *
 * Not modelled: retry, value and sibling entries (the tree holds none), marks, `xa_shift`/`xa_sibs`.
 */
export class XaState {
  /** `xa_node`: the node of the last read, null when the entry sits in `xa_head`, or a special state. */
  node: XaNode | null | typeof XAS_RESTART | typeof XAS_BOUNDS = XAS_RESTART;
  /** `xa_offset`: the slot of {@link node} the cursor is at. */
  offset = 0;

  constructor(
    readonly tree: PageCacheTree,
    /** `xa_index`. */
    public index: number,
  ) {}

  /**
   * Models `xas_reset()` + `xas_load()` (lib/xarray.c): walks from `xa_head` to the slot of {@link index}
   * and returns the page there or null; the cursor then records the last node read.
   */
  *load(): Kernel<Page | null> {
    const tree = this.tree;
    yield tree.line.readEffect; // xa_head
    let node = tree.rootFor(this.index);
    if (node === null) {
      // xas_start(): an index beyond the tree is out of bounds; index 0 of an empty tree sits in the head.
      this.node = tree.top() === null && this.index === 0 ? null : XAS_BOUNDS;
      return null;
    }
    for (;;) {
      // xas_descend(), with RcuObject.touch() inlined (hot path): a load of the node, then the check.
      yield node.line.readEffect;
      node.checkAlive('xa_load');
      const offset = node.slotOffset(this.index);
      const slot = node.slots[offset];
      this.node = node;
      this.offset = offset;
      if (node.shift === 0) return slot as Page | null;
      if (slot === null) return null;
      node = slot as XaNode;
    }
  }

  /**
   * Models `xas_reload()` (include/linux/xarray.h): the entry at the cursor again, read from the node the
   * last walk ended in (one load), not from the root. An entry in `xa_head` is never a page here (a page
   * always sits in a bottom node), so a cursor at the head reads it and finds none.
   */
  *reload(): Kernel<Page | null> {
    const node = this.node;
    if (node === null) {
      yield this.tree.line.readEffect;
      return null;
    }
    if (node === XAS_RESTART || node === XAS_BOUNDS)
      throw new Error(`xas_reload on a cursor in state ${node}`);
    yield node.line.readEffect;
    node.checkAlive('xas_reload');
    return node.shift === 0 ? (node.slots[this.offset] as Page | null) : null;
  }

  /**
   * Models `xas_next_entry()` (include/linux/xarray.h): advances to the next present entry at an index up
   * to `max` and returns it, or null (the cursor is then past `max`). Within a bottom node each slot read is
   * one load of the node; the end of the node, `max` and a cursor not in a bottom node go to {@link find}.
   */
  *nextEntry(max: number): Kernel<Page | null> {
    const node = this.node;
    if (
      node === null ||
      node === XAS_RESTART ||
      node === XAS_BOUNDS ||
      node.shift !== 0 ||
      this.offset !== (this.index & XA_CHUNK_MASK)
    ) {
      return yield* this.find(max);
    }
    for (;;) {
      if (this.index >= max || this.offset === XA_CHUNK_MASK) return yield* this.find(max);
      yield node.line.readEffect;
      node.checkAlive('xas_next_entry');
      const entry = node.slots[this.offset + 1] as Page | null;
      this.offset++;
      this.index++;
      if (entry !== null) return entry;
    }
  }

  /**
   * Models `xas_find()` (lib/xarray.c): the first present entry after the cursor (at the cursor itself for
   * a cursor not walked yet) at an index up to `max`, or null. Climbs to the parent when a node is done and
   * descends into the next child.
   */
  *find(max: number): Kernel<Page | null> {
    if (this.node === XAS_BOUNDS) return null;
    if (this.index > max) {
      this.node = XAS_BOUNDS;
      return null;
    }
    if (this.node === null) {
      this.index = 1;
      this.node = XAS_BOUNDS;
      return null;
    }
    if (this.node === XAS_RESTART) {
      const entry = yield* this.load();
      const walked = this.node as XaState['node']; // xas_load() moved it
      if (entry !== null || walked === null || walked === XAS_BOUNDS) return entry;
    } else if (this.node.shift === 0 && this.offset !== (this.index & XA_CHUNK_MASK)) {
      this.offset = ((this.index - 1) & XA_CHUNK_MASK) + 1;
    }
    let node: XaNode | null = this.node as XaNode;
    this.nextOffset(node);
    while (node !== null && this.index <= max) {
      if (this.offset === XA_CHUNK_SIZE) {
        // xa_parent(): the parent pointer is in the node.
        yield node.line.readEffect;
        node.checkAlive('xas_find');
        this.offset = node.offset + 1;
        node = node.parent;
        this.node = node;
        continue;
      }
      yield node.line.readEffect;
      node.checkAlive('xas_find');
      const entry = node.slots[this.offset];
      if (entry !== null && node.shift > 0) {
        node = entry as XaNode;
        this.node = node;
        this.offset = 0;
        continue;
      }
      if (entry !== null) return entry as Page;
      this.nextOffset(node);
    }
    if (node === null) this.node = XAS_BOUNDS;
    return null;
  }

  /** `xas_advance()`/`xas_next_offset()`: the next slot of `node`, the index moved to its first index. */
  private nextOffset(node: XaNode): void {
    this.offset++;
    const scale = 2 ** node.shift;
    const chunk = scale * XA_CHUNK_SIZE;
    this.index = Math.floor(this.index / chunk) * chunk + this.offset * scale;
  }
}
