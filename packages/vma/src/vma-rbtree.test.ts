import { type Kernel, runSync } from '@spf/machine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { VmArea } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE, VM_READ } from './vm-flags.js';
import { RB_BLACK, VmaRbTree } from './vma-rbtree.js';

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
