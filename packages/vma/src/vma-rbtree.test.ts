import { EffectKind, type Kernel, runSync } from '@spf/machine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { VmArea } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE, VM_READ } from './vm-flags.js';
import { RB_BLACK, type VmaRbNode, VmaRbTree } from './vma-rbtree.js';

const P = 4096;
const A = 0x100000000000;
const PAGES = 32;

const v12Rbtree = () => new MmStruct({ spfV12: { rcuPut: true, rbtree: true } });

type Op =
  | { op: 'mmap'; off: number; n: number; prot: number }
  | { op: 'munmap'; off: number; n: number }
  | { op: 'mprotect'; off: number; n: number; prot: number };

const off = fc.integer({ min: 0, max: PAGES - 1 });
const len = fc.integer({ min: 1, max: 6 });
const prot = fc.constantFrom(PROT_READ, PROT_READ | PROT_WRITE);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('mmap' as const), off, n: len, prot }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('munmap' as const), off, n: len }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('mprotect' as const), off, n: len, prot }) },
);

function apply(mm: MmStruct, o: Op): void {
  const addr = A + o.off * P;
  if (o.op === 'mmap')
    mmapSync(mm, { addr, len: o.n * P, prot: o.prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
  else if (o.op === 'munmap') munmapSync(mm, addr, o.n * P);
  else mprotectSync(mm, addr, o.n * P, o.prot);
}

describe("SPF v12's rbtree of VMAs (MmConfig.spfV12.rbtree)", () => {
  it('is kept only when asked for: the default lookup walks the B+tree and writes mm_seq once per commit', () => {
    const plain = new MmStruct({ spfV12: { rcuPut: true } });
    expect(plain.rbTree).toBeNull();
    mmapSync(plain, { addr: A, len: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    expect(plain.spfTreeSeq.peek()).toBe(2);
    const mm = v12Rbtree();
    expect(mm.childConfig().spfV12).toEqual({ rcuPut: true, rbtree: true });
    mmapSync(mm, { addr: A, len: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    mmapSync(mm, {
      addr: A + 2 * P,
      len: P,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    // One write section per link (__vma_link_rb), none around the B+tree store.
    expect(mm.spfTreeSeq.peek()).toBe(4);
    munmapSync(mm, A, 3 * P);
    expect(mm.spfTreeSeq.peek()).toBe(8); // one per erase (__vma_rb_erase)
    expect(mm.rbTree?.size).toBe(0);
  });

  it('stays a valid red-black tree with the B+tree contents across random mmap/munmap/mprotect', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const mm = v12Rbtree();
        const rb = mm.rbTree as VmaRbTree;
        for (const o of ops) {
          apply(mm, o);
          expect(rb.validate([...mm.vmas()])).toEqual([]);
          // With no writer running, the lockless walk answers as find_vma() does.
          for (let i = 0; i <= PAGES; i += 3) {
            const addr = A + i * P + 100;
            expect(runSync(mm.findVmaRcu(addr))).toBe(mm.findVma(addr));
          }
        }
      }),
      { numRuns: 150, seed: 13 },
    );
  });

  it("fork's child keeps its own rbtree (dup_mmap links each copy), and exit unlinks everything", () => {
    const mm = v12Rbtree();
    for (const o of [0, 3, 6, 9, 12])
      mmapSync(mm, {
        addr: A + o * P,
        len: 2 * P,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      });
    const child = forkSync(mm);
    const rb = child.rbTree as VmaRbTree;
    expect(rb).not.toBe(mm.rbTree);
    expect(rb.size).toBe(5);
    expect(rb.validate([...child.vmas()])).toEqual([]);
    expect([...rb.vmas()].every((v) => v.vmMm === child)).toBe(true);
    munmapSync(child, 0, child.taskSize);
    expect(rb.size).toBe(0);
    expect(rb.root).toBeNull();
    expect(mm.rbTree?.validate([...mm.vmas()])).toEqual([]);
  });

  it('validate() reports a broken tree', () => {
    const mm = v12Rbtree();
    for (let i = 0; i < 5; i++)
      mmapSync(mm, {
        addr: A + 2 * i * P,
        len: P,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      });
    const rb = mm.rbTree as VmaRbTree;
    expect(rb.validate([...mm.vmas()])).toEqual([]);
    expect(rb.validate([...mm.vmas()].reverse())[0]).toMatch(/is not the expected/);
    const root = rb.root;
    if (root === null) throw new Error('empty');
    root.color = 0;
    expect(rb.validate()).toContain('the root is red');
    root.color = RB_BLACK;
    const l = root.left;
    root.left = root.right;
    expect(rb.validate().join('\n')).toMatch(/is not below|parent pointer is wrong|black nodes/);
    root.left = l;
    expect(rb.validate()).toEqual([]);
  });
});

/** A tree of `n` one-page VMAs at every other page, built without machine effects. */
function tree(n: number): { mm: MmStruct; rb: VmaRbTree; vmas: VmArea[] } {
  const mm = new MmStruct();
  const rb = new VmaRbTree();
  const vmas: VmArea[] = [];
  for (let i = 0; i < n; i++) {
    const v = new VmArea(mm, A + 2 * i * P, A + (2 * i + 1) * P, VM_READ, 0);
    vmas.push(v);
    runSync(rb.insert(v));
  }
  return { mm, rb, vmas };
}

/** A small deterministic PRNG (mulberry32) for the interleavings. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs `writer` (an insert or an erase) and a lockless `find_vma()` walk for `addr` interleaved at random,
 * one machine effect at a time. Returns the walk's answer and the number of nodes it read.
 */
function interleave(
  rb: VmaRbTree,
  writer: Kernel<unknown>,
  addr: number,
  rand: () => number,
  walkFirst: number,
): { found: VmArea | null; reads: number } {
  const walker = rb.findRcu(addr);
  let reads = 0;
  let wDone = false;
  let found: VmArea | null | undefined;
  const stepWalker = () => {
    const r = walker.next();
    if (r.done) found = r.value;
    else reads++;
  };
  for (let i = 0; i < walkFirst && found === undefined; i++) stepWalker();
  while (found === undefined) {
    if (!wDone && rand() < 0.5) wDone = writer.next().done === true;
    else stepWalker();
    if (reads > 200) throw new Error(`the walk for ${addr.toString(16)} did not end in 200 reads (a loop)`);
  }
  while (!wDone) wDone = writer.next().done === true;
  return { found, reads };
}

describe('a lockless walk interleaved with rbtree updates at every store', () => {
  it('always ends, reads no erased-and-freed node, and can miss a VMA that stays in the tree', () => {
    const rand = prng(1);
    let wrong = 0;
    let walks = 0;
    for (let trial = 0; trial < 300; trial++) {
      const n = 3 + Math.floor(rand() * 14);
      const { mm, rb, vmas } = tree(n);
      // A VMA freed earlier (erased, then a grace period): the walker must never reach it.
      const freed = vmas[Math.floor(rand() * n)];
      runSync(rb.erase(freed));
      freed.poison('freed after its erase and a grace period');
      const live = vmas.filter((v) => v !== freed);
      // The writer's update: link a new VMA in a free slot, or erase a live one.
      let writer: Kernel<unknown>;
      let changed: VmArea;
      if (rand() < 0.5) {
        const slot = 2 * Math.floor(rand() * (n + 2)) + 1; // the odd pages are free
        changed = new VmArea(mm, A + slot * P, A + (slot + 1) * P, VM_READ, 0);
        writer = rb.insert(changed);
      } else {
        changed = live[Math.floor(rand() * live.length)];
        writer = rb.erase(changed);
      }
      // Look up a VMA that is in the tree before, during and after the update.
      const stable = live.filter((v) => v !== changed);
      const target = stable[Math.floor(rand() * stable.length)];
      const { found, reads } = interleave(rb, writer, target.vmStart + 5, rand, Math.floor(rand() * 4));
      walks++;
      // Never longer than a path through every node the tree ever held.
      expect(reads).toBeLessThanOrEqual(n + 1);
      if (found !== target) wrong++;
      expect(rb.validate()).toEqual([]);
      // Once the update is over, the walk is right again.
      expect(runSync(rb.findRcu(target.vmStart + 5))).toBe(target);
    }
    // lib/rbtree.c's lockless guarantee is only "ends and sees valid nodes": some walks missed their VMA.
    expect(wrong).toBeGreaterThan(0);
    expect(wrong).toBeLessThan(walks);
  });

  it('a walk between the stores of a right rotation misses the node moved up (a wrong result, not a crash)', () => {
    // Ascending VMAs 0..2 inserted in descending order: linking 0 under 1 (left of 2) right-rotates at 2.
    const mm = new MmStruct();
    const rb = new VmaRbTree();
    const v = [0, 1, 2].map((i) => new VmArea(mm, A + 2 * i * P, A + (2 * i + 1) * P, VM_READ, 0));
    runSync(rb.insert(v[2]));
    runSync(rb.insert(v[1]));
    const writer = rb.insert(v[0]);
    const labels: string[] = [];
    let wrongAt = -1;
    for (let store = 0; ; store++) {
      // A whole lookup of VMA 1 between two of the insert's stores.
      const got = runSync(rb.findRcu(v[1].vmStart));
      if (got !== v[1] && wrongAt === -1) wrongAt = store;
      const r = writer.next();
      if (r.done) break;
      labels.push((r.value as { label?: string }).label ?? '');
    }
    expect(labels).toContain('WRITE_ONCE(rb_left)');
    expect(wrongAt).toBeGreaterThan(0);
    expect(rb.validate(v)).toEqual([]);
    expect(runSync(rb.findRcu(v[1].vmStart))).toBe(v[1]);
  });
});

// ---- the exact store order of lib/rbtree.c ----

/**
 * A tree of VMAs `v0`, `v1`, ... at every other page (numbered in address order), linked in the order given
 * (`insert` of the numbers), without recording.
 */
function shaped(order: number[], count = Math.max(-1, ...order) + 2): { rb: VmaRbTree; v: VmArea[] } {
  const mm = new MmStruct();
  const rb = new VmaRbTree();
  const v: VmArea[] = [];
  for (let i = 0; i < count; i++) v.push(new VmArea(mm, A + 2 * i * P, A + (2 * i + 1) * P, VM_READ, 0));
  for (const i of order) runSync(rb.insert(v[i]));
  expect(rb.validate()).toEqual([]);
  return { rb, v };
}

/**
 * Runs `writer` and describes each of its machine writes by what the store set, read from the tree right after
 * it (the store is made when the writer resumes): `v1.left=v0`, `v2.pc=v1,B` (parent and colour, one word),
 * `v3.parent=v2` (rb_set_parent), `v1.black` (rb_set_black), `root=v1`. The node named is the one whose line
 * the write is on.
 */
function stores(rb: VmaRbTree, v: VmArea[], writer: Kernel<unknown>): string[] {
  const name = (n: VmaRbNode | null) => (n === null ? 'null' : `v${v.indexOf(n.vma)}`);
  const out: string[] = [];
  let r = writer.next();
  while (r.done !== true) {
    const e = r.value;
    r = writer.next();
    if (e.kind !== EffectKind.Write) throw new Error(`the writer made a ${e.kind} effect`);
    walksEnd(rb, v);
    const label = (e as { label?: string }).label;
    if (e.line === rb.rootLine) {
      // __rb_change_child()'s WRITE_ONCE(root->rb_node), or rb_link_node() linking the first node.
      if (label === 'WRITE_ONCE(mm_rb.rb_node)') out.push(`root=${name(rb.root)}`);
      else if (label === 'rb_link_node: mm_rb.rb_node = node') out.push(`link root=${name(rb.root)}`);
      else throw new Error(`unknown store to the root: ${label}`);
      continue;
    }
    const vma = v.find((x) => x.line === e.line);
    const n = vma === undefined ? undefined : rb.nodeOf(vma);
    if (n === undefined) throw new Error(`a write to a line that is no linked node: ${e.label}`);
    const c = n.color === RB_BLACK ? 'B' : 'R';
    if (label === 'rb_set_parent_color') out.push(`${name(n)}.pc=${name(n.parent)},${c}`);
    else if (label === 'rb_set_parent') out.push(`${name(n)}.parent=${name(n.parent)}`);
    else if (label === 'rb_set_black') out.push(`${name(n)}.black`);
    else if (label === 'WRITE_ONCE(rb_left)') out.push(`${name(n)}.left=${name(n.left)}`);
    else if (label === 'WRITE_ONCE(rb_right)') out.push(`${name(n)}.right=${name(n.right)}`);
    else throw new Error(`unknown store ${label}`);
  }
  return out;
}

/**
 * lib/rbtree.c's lockless guarantee between two stores of an update: a find_vma() walk for any address ends,
 * after at most one read per node the tree ever held (no store makes the child links loop).
 */
function walksEnd(rb: VmaRbTree, v: VmArea[]): void {
  for (const addr of [0, ...v.flatMap((x) => [x.vmStart, x.vmEnd])]) {
    const walk = rb.findRcu(addr);
    let reads = 0;
    while (walk.next().done !== true) {
      reads++;
      if (reads > v.length + 1) throw new Error(`the walk for ${addr.toString(16)} loops`);
    }
  }
}

/** The stores of linking `v[i]` into the tree built by `order`; the tree is then checked. */
function insertStores(order: number[], i: number, count?: number): string[] {
  const { rb, v } = shaped(order, count ?? Math.max(i, ...order) + 1);
  const s = stores(rb, v, rb.insert(v[i]));
  expect(rb.validate([...order, i].sort((a, b) => a - b).map((k) => v[k]))).toEqual([]);
  return s;
}

/** The stores of erasing `v[i]` from the tree built by `order` (then `before` erased, unrecorded). */
function eraseStores(order: number[], i: number, before: number[] = []): string[] {
  const { rb, v } = shaped(order);
  for (const b of before) runSync(rb.erase(v[b]));
  const s = stores(rb, v, rb.erase(v[i]));
  const left = order.filter((k) => k !== i && !before.includes(k)).sort((a, b) => a - b);
  expect(rb.validate(left.map((k) => v[k]))).toEqual([]);
  expect(rb.nodeOf(v[i])).toBeUndefined();
  return s;
}

describe("lib/rbtree.c's stores, in its order (Linux 5.1), for each case of an insert", () => {
  it('the first node: rb_link_node() stores the root, then __rb_insert() paints it black', () => {
    expect(insertStores([], 0)).toEqual(['link root=v0', 'v0.pc=null,B']);
  });

  it('under a black parent: only the link', () => {
    expect(insertStores([1], 0)).toEqual(['v1.left=v0']);
    expect(insertStores([0], 1)).toEqual(['v0.right=v1']);
  });

  it('case 1, a red uncle: uncle, parent black, grandparent red, then (the root) black again', () => {
    // v1 black, v0 and v2 red; v3 linked under v2.
    expect(insertStores([1, 0, 2], 3)).toEqual([
      'v2.right=v3',
      'v0.pc=v1,B',
      'v2.pc=v1,B',
      'v1.pc=null,R',
      'v1.pc=null,B',
    ]);
    expect(insertStores([2, 1, 3], 0)).toEqual([
      'v1.left=v0',
      'v3.pc=v2,B',
      'v1.pc=v2,B',
      'v2.pc=null,R',
      'v2.pc=null,B',
    ]);
  });

  it('case 3, left-left: right rotate at the grandparent, the child links before the parents', () => {
    expect(insertStores([2, 1], 0)).toEqual([
      'v1.left=v0',
      'v2.left=null',
      'v1.right=v2',
      'v1.pc=null,B',
      'v2.pc=v1,R',
      'root=v1',
    ]);
  });

  it('case 3 mirrored, right-right: left rotate at the grandparent', () => {
    expect(insertStores([0, 1], 2)).toEqual([
      'v1.right=v2',
      'v0.right=null',
      'v1.left=v0',
      'v1.pc=null,B',
      'v0.pc=v1,R',
      'root=v1',
    ]);
  });

  it('case 2 then 3, left-right: left rotate at the parent, then right rotate at the grandparent', () => {
    expect(insertStores([2, 0], 1)).toEqual([
      'v0.right=v1',
      'v0.right=null',
      'v1.left=v0',
      'v0.pc=v1,R',
      'v2.left=null',
      'v1.right=v2',
      'v1.pc=null,B',
      'v2.pc=v1,R',
      'root=v1',
    ]);
  });

  it('case 2 then 3 mirrored, right-left', () => {
    expect(insertStores([0, 2], 1)).toEqual([
      'v2.left=v1',
      'v2.left=null',
      'v1.right=v2',
      'v2.pc=v1,R',
      'v0.right=null',
      'v1.left=v0',
      'v1.pc=null,B',
      'v0.pc=v1,R',
      'root=v1',
    ]);
  });

  it('case 1 recursing to a case 3 that moves a subtree: its parent stored after both child links', () => {
    // Ascending 0..6: v1 B (v0 B, v3 R (v2 B, v5 B (v4 R, v6 R))); v7 under v6.
    expect(insertStores([0, 1, 2, 3, 4, 5, 6], 7)).toEqual([
      'v6.right=v7',
      'v4.pc=v5,B',
      'v6.pc=v5,B',
      'v5.pc=v3,R',
      'v1.right=v2',
      'v3.left=v1',
      'v2.pc=v1,B',
      'v3.pc=null,B',
      'v1.pc=v3,R',
      'root=v3',
    ]);
    // The mirror image: descending 7..1, v0 linked.
    expect(insertStores([7, 6, 5, 4, 3, 2, 1], 0)).toEqual([
      'v1.left=v0',
      'v3.pc=v2,B',
      'v1.pc=v2,B',
      'v2.pc=v4,R',
      'v6.left=v5',
      'v4.right=v6',
      'v5.pc=v6,B',
      'v4.pc=null,B',
      'v6.pc=v4,R',
      'root=v4',
    ]);
  });

  it('case 1 recursing to a case 2 that moves a subtree, then case 3 (both sides)', () => {
    // v2 B (v0 B, v10 R (v6 B (v4 R, v8 R), v14 B (v12 R, v16 R))); v5 linked under v4: case 1 at v6, then
    // v6 is v10's left child and v10 v2's right: case 2 at v10 (v8 moves), case 3 at v2 (v4 moves).
    expect(insertStores([2, 0, 10, 6, 14, 4, 8, 12, 16], 5)).toEqual([
      'v4.right=v5',
      'v8.pc=v6,B',
      'v4.pc=v6,B',
      'v6.pc=v10,R',
      'v10.left=v8',
      'v6.right=v10',
      'v8.pc=v10,B',
      'v10.pc=v6,R',
      'v2.right=v4',
      'v6.left=v2',
      'v4.pc=v2,B',
      'v6.pc=null,B',
      'v2.pc=v6,R',
      'root=v6',
    ]);
    expect(insertStores([14, 16, 6, 10, 2, 12, 8, 4, 0], 11)).toEqual([
      'v12.left=v11',
      'v8.pc=v10,B',
      'v12.pc=v10,B',
      'v10.pc=v6,R',
      'v6.right=v8',
      'v10.left=v6',
      'v8.pc=v6,B',
      'v6.pc=v10,R',
      'v14.left=v12',
      'v10.right=v14',
      'v12.pc=v14,B',
      'v10.pc=null,B',
      'v14.pc=v10,R',
      'root=v10',
    ]);
  });
});

describe("lib/rbtree.c's stores, in its order (Linux 5.1), for each case of an erase", () => {
  it('a red leaf: only its parent link cleared', () => {
    expect(eraseStores([1, 0, 2], 2)).toEqual(['v1.right=null']);
    expect(eraseStores([1, 0, 2], 0)).toEqual(['v1.left=null']);
  });

  it('one child: linked in its place, then given the erased node parent and colour (right child)', () => {
    expect(eraseStores([0, 1], 0)).toEqual(['root=v1', 'v1.pc=null,B']);
  });

  it('one left child: given the parent and colour first, then linked in its place', () => {
    expect(eraseStores([1, 0], 1)).toEqual(['v0.pc=null,B', 'root=v0']);
  });

  it('case 2, the successor is the right child: it takes the left subtree, then the place, then the colour', () => {
    expect(eraseStores([1, 0, 2], 1)).toEqual(['v2.left=v0', 'v0.parent=v2', 'root=v2', 'v2.pc=null,B']);
    // With a child of its own (child2): the successor's parent and colour first, then child2's (black).
    expect(eraseStores([1, 0, 2, 3], 1)).toEqual([
      'v2.left=v0',
      'v0.parent=v2',
      'root=v2',
      'v2.pc=null,B',
      'v3.pc=v2,B',
    ]);
  });

  it('case 3, the successor is leftmost under the right child: unlinked below first, then moved up', () => {
    // v1 B (v0 B, v3 B (v2 R, -)).
    expect(eraseStores([1, 0, 3, 2], 1)).toEqual([
      'v3.left=null',
      'v2.right=v3',
      'v3.parent=v2',
      'v2.left=v0',
      'v0.parent=v2',
      'root=v2',
      'v2.pc=null,B',
    ]);
  });

  it('a black leaf, rebalance case 4 (far nephew red): left rotate at the parent, colours after the links', () => {
    // Ascending 0..5: v1 B (v0 B, v3 R (v2 B, v4 B (-, v5 R))); v2 erased.
    expect(eraseStores([0, 1, 2, 3, 4, 5], 2)).toEqual([
      'v3.left=null',
      'v3.right=null',
      'v4.left=v3',
      'v5.pc=v4,B',
      'v4.pc=v1,R',
      'v3.pc=v4,B',
      'v1.right=v4',
    ]);
    expect(eraseStores([5, 4, 3, 2, 1, 0], 3)).toEqual([
      'v2.right=null',
      'v2.left=null',
      'v1.right=v2',
      'v0.pc=v1,B',
      'v1.pc=v4,R',
      'v2.pc=v1,B',
      'v4.left=v1',
    ]);
  });

  it('rebalance case 2 under a red parent: the sibling painted red, then the parent black', () => {
    // After the case-4 erase above: v1 B (v0 B, v4 R (v3 B, v5 B)); v5 erased.
    expect(eraseStores([0, 1, 2, 3, 4, 5], 5, [2])).toEqual(['v4.right=null', 'v3.pc=v4,R', 'v4.black']);
  });

  it('rebalance case 2 under a black root: the sibling painted red, nothing above', () => {
    // v1 B (v0 B, v2 B) once v3 is erased.
    expect(eraseStores([0, 1, 2, 3], 0, [3])).toEqual(['v1.left=null', 'v2.pc=v1,R']);
  });

  it('rebalance case 1 (red sibling): left rotate at the parent, then case 2 under the now red parent', () => {
    expect(eraseStores([0, 1, 2, 3, 4, 5], 0)).toEqual([
      'v1.left=null',
      'v1.right=v2',
      'v3.left=v1',
      'v2.pc=v1,B',
      'v3.pc=null,B',
      'v1.pc=v3,R',
      'root=v3',
      'v2.pc=v1,R',
      'v1.black',
    ]);
    expect(eraseStores([5, 4, 3, 2, 1, 0], 5)).toEqual([
      'v4.right=null',
      'v4.left=v3',
      'v2.right=v4',
      'v3.pc=v4,B',
      'v2.pc=null,B',
      'v4.pc=v2,R',
      'root=v2',
      'v3.pc=v4,R',
      'v4.black',
    ]);
  });

  it('rebalance case 3 (near nephew red): right rotate at the sibling, then case 4', () => {
    // v1 B (v0 B, v3 B (v2 R, -)); v0 erased.
    expect(eraseStores([1, 0, 3, 2], 0)).toEqual([
      'v1.left=null',
      'v3.left=null',
      'v2.right=v3',
      'v1.right=v2',
      'v1.right=null',
      'v2.left=v1',
      'v3.pc=v2,B',
      'v2.pc=null,B',
      'v1.pc=v2,B',
      'root=v2',
    ]);
    // Mirrored: v2 B (v0 B (-, v1 R), v3 B); v3 erased.
    expect(eraseStores([2, 3, 0, 1], 3)).toEqual([
      'v2.right=null',
      'v0.right=null',
      'v1.left=v0',
      'v2.left=v1',
      'v2.left=null',
      'v1.right=v2',
      'v0.pc=v1,B',
      'v1.pc=null,B',
      'v2.pc=v1,B',
      'root=v1',
    ]);
  });
  it('rebalance case 2 under a black parent recurses; case 4 then moves the sibling subtree (rb_set_parent)', () => {
    const asc = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    // Ascending 0..9, v9 erased: v3 B (v1 B (v0 B, v2 B), v5 B (v4 B, v7 R (v6 B, v8 B))); v0 erased.
    expect(eraseStores(asc, 0, [9])).toEqual([
      'v1.left=null',
      'v2.pc=v1,R',
      'v3.right=v4',
      'v5.left=v3',
      'v7.pc=v5,B',
      'v4.parent=v3',
      'v5.pc=null,B',
      'v3.pc=v5,B',
      'root=v5',
    ]);
    expect(eraseStores([...asc].reverse(), 9, [0])).toEqual([
      'v8.right=null',
      'v7.pc=v8,R',
      'v6.left=v5',
      'v4.right=v6',
      'v2.pc=v4,B',
      'v5.parent=v6',
      'v4.pc=null,B',
      'v6.pc=v4,B',
      'root=v4',
    ]);
    // Then v5 B (v3 B (v1 B (-, v2 R), v4 B), v7 B (v6 B, v8 B)); v8 erased: case 2 twice, the second with a
    // sibling whose two children are black (not null).
    expect(eraseStores(asc, 8, [9, 0])).toEqual(['v7.right=null', 'v6.pc=v7,R', 'v3.pc=v5,R']);
    expect(eraseStores([...asc].reverse(), 1, [0, 9])).toEqual(['v2.left=null', 'v3.pc=v2,R', 'v6.pc=v4,R']);
  });
  it('rebalance case 3 with a subtree under the near nephew: it moves to the sibling (black), after the three links', () => {
    // v4 B (v1 B (v0 B, v3 B), v9 B (v7 R (v5 B, v8 B), v11 B (v10 R, -))); v1 erased: its successor v3, then
    // case 2 on the mirrored side, then case 3 and 4 under v4.
    expect(eraseStores([5, 4, 0, 11, 3, 9, 10, 2, 8, 1, 7, 6], 1, [6, 2])).toEqual([
      'v3.left=v0',
      'v0.parent=v3',
      'v4.left=v3',
      'v3.pc=v4,B',
      'v0.pc=v3,R',
      'v9.left=v8',
      'v7.right=v9',
      'v4.right=v7',
      'v8.pc=v9,B',
      'v4.right=v5',
      'v7.left=v4',
      'v9.pc=v7,B',
      'v5.parent=v4',
      'v7.pc=null,B',
      'v4.pc=v7,B',
      'root=v7',
    ]);
    // Mirrored: v7 B (v2 B (v0 B, v4 R (v3 B, v5 B (-, v6 R))), v9 B (v8 B, v10 B)); the root v7 erased (its
    // successor v8, leftmost under v9).
    expect(eraseStores([10, 2, 1, 9, 5, 7, 8, 4, 0, 3, 6], 7, [1])).toEqual([
      'v9.left=null',
      'v8.right=v9',
      'v9.parent=v8',
      'v8.left=v2',
      'v2.parent=v8',
      'root=v8',
      'v8.pc=null,B',
      'v10.pc=v9,R',
      'v2.right=v3',
      'v4.left=v2',
      'v8.left=v4',
      'v3.pc=v2,B',
      'v8.left=v5',
      'v4.right=v8',
      'v2.pc=v4,B',
      'v5.parent=v8',
      'v4.pc=null,B',
      'v8.pc=v4,B',
      'root=v4',
    ]);
  });
});

describe('VmaRbTree: the lockless find_vma() walk, erase() and validate()', () => {
  it("find_vma()'s walk: one read of the root word, then one of each node's line on the path, stopping at the VMA", () => {
    // v1 B (v0 B, v3 R (v2 B, v5 B (v4 R, v6 R))).
    const { rb, v } = shaped([0, 1, 2, 3, 4, 5, 6]);
    const walk = (addr: number) => {
      const lines: string[] = [];
      const found = runSync(
        (function* () {
          const code = rb.findRcu(addr);
          let resume: unknown;
          for (;;) {
            const r = code.next(resume);
            if (r.done) return r.value;
            const e = r.value;
            if (e.kind !== EffectKind.Read) throw new Error(`the walk made a ${e.kind} effect`);
            const label = (e as { label?: string }).label;
            if (e.line === rb.rootLine && label === 'find_vma: mm_rb.rb_node') lines.push('root');
            else if (label === 'find_vma: vm_end, vm_start, rb_left/rb_right')
              lines.push(`v${v.findIndex((x) => x.line === e.line)}`);
            else throw new Error(`unexpected read ${label}`);
            resume = yield e;
          }
        })(),
      );
      return { found: found === null ? 'null' : `v${v.indexOf(found)}`, lines };
    };
    expect(walk(v[4].vmStart + 8)).toEqual({ found: 'v4', lines: ['root', 'v1', 'v3', 'v5', 'v4'] });
    // The first byte of a VMA stops the walk there; its end does not (find_vma: vm_end > addr).
    expect(walk(v[1].vmStart)).toEqual({ found: 'v1', lines: ['root', 'v1'] });
    expect(walk(v[1].vmEnd)).toEqual({ found: 'v2', lines: ['root', 'v1', 'v3', 'v2'] });
    // In the gap below v2: the first VMA above, found after going left to the end.
    expect(walk(v[2].vmStart - 1)).toEqual({ found: 'v2', lines: ['root', 'v1', 'v3', 'v2'] });
    expect(walk(v[6].vmEnd)).toEqual({ found: 'null', lines: ['root', 'v1', 'v3', 'v5', 'v6'] });
    expect(walk(0)).toEqual({ found: 'v0', lines: ['root', 'v1', 'v0'] });
  });

  it('a walk that reaches a freed VMA reports a use-after-free naming the lockless rbtree walk', () => {
    const { rb, v } = shaped([0, 1, 2]);
    v[2].poison('freed without a grace period');
    expect(() => runSync(rb.findRcu(v[2].vmStart))).toThrow(/find_vma \(lockless rbtree walk\)/);
  });

  it('erase() unlinks once: true and the node marked erased; false for a VMA not linked, with no store', () => {
    const { rb, v } = shaped([0, 1, 2]);
    const node = rb.nodeOf(v[1]);
    expect(node?.erased).toBe(false);
    expect(runSync(rb.erase(v[1]))).toBe(true);
    expect(node?.erased).toBe(true);
    expect(rb.has(v[1])).toBe(false);
    expect(rb.nodeOf(v[1])).toBeUndefined();
    expect(rb.size).toBe(2);
    expect(stores(rb, v, rb.erase(v[1]))).toEqual([]);
    expect(runSync(rb.erase(v[1]))).toBe(false);
    expect(runSync(rb.erase(v[3]))).toBe(false);
    expect(rb.validate([v[0], v[2]])).toEqual([]);
  });

  it('the root word is a line of its own, labelled mm->mm_rb unless named', () => {
    expect(new VmaRbTree().rootLine.label).toBe('mm->mm_rb');
    expect(new VmaRbTree('mm#3->mm_rb').rootLine.label).toBe('mm#3->mm_rb');
  });

  it('validate() names each broken invariant', () => {
    const nodes = (rb: VmaRbTree, v: VmArea[]) => v.map((x) => rb.nodeOf(x) as VmaRbNode);
    {
      // v1 B (v0 R, v2 R)
      const { rb, v } = shaped([1, 0, 2]);
      const [n0, n1, n2] = nodes(rb, v.slice(0, 3));
      n1.parent = n0;
      expect(rb.validate()).toEqual(['the root has a parent', `${v[1]}'s parent pointer is wrong`]);
      n1.parent = null;
      n0.color = RB_BLACK;
      // Both empty links under v2 are one black node short.
      expect(rb.validate()).toEqual([
        'a path has 1 black nodes, another 2',
        'a path has 1 black nodes, another 2',
      ]);
      n0.color = n2.color;
      n0.parent = n2;
      expect(rb.validate()).toEqual([`${v[0]}'s parent pointer is wrong`]);
      n0.parent = n1;
      n0.erased = true;
      expect(rb.validate()).toEqual([`${v[0]} is reachable but erased`]);
      n0.erased = false;
      n0.left = n1;
      expect(rb.validate()).toContain(`${v[1]} is reachable twice (a loop)`);
      n0.left = null;
      (rb as unknown as { nodes: Map<VmArea, VmaRbNode> }).nodes.delete(v[2]);
      expect(rb.validate()).toEqual([
        `${v[2]} is linked but not in the node map`,
        '3 VMAs reachable, 2 linked',
      ]);
    }
    {
      // v1 B (v0 B, v2 B (-, v3 R)): v2 painted red.
      const { rb, v } = shaped([1, 0, 2, 3]);
      (rb.nodeOf(v[2]) as VmaRbNode).color = 0;
      expect(rb.validate()).toEqual([
        'a path has 1 black nodes, another 2',
        `red ${v[3]} has a red parent`,
        'a path has 1 black nodes, another 2',
        'a path has 1 black nodes, another 2',
      ]);
    }
    {
      const { rb, v } = shaped([1, 0, 2]);
      v[0].vmEnd = v[1].vmStart + P;
      expect(rb.validate()).toEqual([`${v[0]} is not below ${v[1]}`]);
      v[0].vmEnd = v[0].vmStart + P;
      expect(rb.validate([v[0], v[1]])).toEqual([
        `in-order walk [${v[0]}, ${v[1]}, ${v[2]}] is not the expected [${v[0]}, ${v[1]}]`,
      ]);
      expect(rb.validate([v[0], v[1], v[2]])).toEqual([]);
    }
  });
});
