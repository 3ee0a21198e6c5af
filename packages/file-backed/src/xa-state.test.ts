import { doUserAddrFault } from '@spf/fault-classic';
import { Rcu } from '@spf/locks';
import {
  EffectKind,
  expandCalls,
  exploreInTest,
  type Kernel,
  type Machine,
  type MemoryLine,
  runSync,
} from '@spf/machine';
import { type Page, PhysicalMemory } from '@spf/pagetable';
import { MAP_PRIVATE, PROT_READ } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { PageCacheTree, type XaNode, XAS_BOUNDS, XaState, XA_CHUNK_SIZE } from './page-cache-tree.js';
import { makeFileFixture } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

/** Runs `code` (its calls expanded) and counts its loads of each line. */
function* countingLoads<T>(code: Kernel<T>, loads: Map<MemoryLine, number>): Kernel<T> {
  const inner = expandCalls(code);
  let input: unknown;
  for (;;) {
    const r = inner.next(input);
    if (r.done) return r.value;
    const e = r.value as { kind: number; line?: MemoryLine };
    if (e.kind === EffectKind.Read && e.line !== undefined) loads.set(e.line, (loads.get(e.line) ?? 0) + 1);
    input = yield r.value;
  }
}

/**
 * A cached file of 128 pages (a two-level tree: a top node over two bottom nodes of 64 pages) on a fixture
 * whose faults count their loads into `loads`.
 */
function twoLevelFile(loads: Map<MemoryLine, number>, faultAroundBytes?: number) {
  const fx = makeFileFixture({
    faultAroundBytes,
    handler: (env) => (fault) => countingLoads(doUserAddrFault(env, fault), loads),
  });
  const f = fx.makeFile(2, 2 * XA_CHUNK_SIZE);
  const tree = f.mapping.iPages;
  const top = tree.top() as XaNode;
  const bottom = top.slots[1] as XaNode;
  expect(top.shift).toBe(6);
  expect(bottom.shift).toBe(0);
  return { fx, f, tree, top, bottom };
}

describe('XaState: the xa_state cursor of page-cache lookups', () => {
  it('a minor-fault lookup (getFolio of a cached page) walks once and re-checks one slot: depth + 2 loads', () => {
    const loads = new Map<MemoryLine, number>();
    const { fx, f, tree, top, bottom } = twoLevelFile(loads);
    const page = fx.run(countingLoads(f.mapping.getFolio(XA_CHUNK_SIZE + 6), loads));
    expect(page).toBe(tree.peek(XA_CHUNK_SIZE + 6));
    // xas_load(): xa_head, the top node, the bottom node; xas_reload(): the bottom node again. Walking the
    // whole tree again for the re-check would read the head and the top node twice.
    expect(loads.get(tree.line)).toBe(1);
    expect(loads.get(top.line)).toBe(1);
    expect(loads.get(bottom.line)).toBe(2);
  });

  it('fault-around over 16 cached pages walks from the root once, then reads the bottom node twice a page', () => {
    const loads = new Map<MemoryLine, number>();
    const { fx, f, tree, top, bottom } = twoLevelFile(loads, 64 * 1024);
    fx.mmapFile(A, 2 * XA_CHUNK_SIZE, PROT_READ, MAP_PRIVATE, f);
    // The read fault on page 64 maps the window 64..79 by fault-around, a minor fault with no ->fault call.
    expect(fx.touch(A + XA_CHUNK_SIZE * P, 'r')).toMatchObject({ ok: true });
    expect([fx.task.minflt, fx.task.majflt]).toEqual([1, 0]);
    for (let p = XA_CHUNK_SIZE; p < XA_CHUNK_SIZE + 16; p++) expect(fx.present(A + p * P)).toBe(true);
    expect(fx.present(A + (XA_CHUNK_SIZE + 16) * P)).toBe(false);
    // One walk from the root (xas_load() of the first index): the head and the top node once each, where
    // a walk per lookup and per re-check would read them 32 times.
    expect(loads.get(tree.line)).toBe(1);
    expect(loads.get(top.line)).toBe(1);
    // The bottom node: per page one read of its slot (the walk's for the first page, xas_next_entry()'s
    // after) and one re-check (xas_reload()); the window's end costs nothing more.
    expect(loads.get(bottom.line)).toBe(2 * 16);
  });

  it('a cursor steps over holes and climbs to the next bottom node; past max it stops without a load', () => {
    const loads = new Map<MemoryLine, number>();
    const { fx, tree, top, bottom } = twoLevelFile(loads);
    const low = top.slots[0] as XaNode;
    const xas = new XaState(tree, XA_CHUNK_SIZE - 2);
    const seen: number[] = [];
    fx.run(
      countingLoads(
        (function* () {
          for (
            let e = yield* xas.nextEntry(XA_CHUNK_SIZE + 1);
            e !== null;
            e = yield* xas.nextEntry(XA_CHUNK_SIZE + 1)
          ) {
            expect(e).toBe(tree.peek(xas.index));
            seen.push(xas.index);
          }
        })(),
        loads,
      ),
    );
    expect(seen).toEqual([62, 63, 64, 65]);
    // 62: the walk (head, top, low); 63: one step in low; 64: low's parent pointer, the top node's next
    // slot, the new bottom node's slot 0; 65: one step; then max: nothing.
    expect(loads.get(tree.line)).toBe(1);
    expect(loads.get(low.line)).toBe(3);
    expect(loads.get(top.line)).toBe(2);
    expect(loads.get(bottom.line)).toBe(2);
    expect([xas.node, xas.index]).toEqual([bottom, XA_CHUNK_SIZE + 2]);
    // A cursor past max is out of bounds for good.
    expect(fx.run(xas.nextEntry(XA_CHUNK_SIZE + 1))).toBeNull();
    expect(xas.node).toBe(XAS_BOUNDS);
  });

  /**
   * A cursor walks from page 62 to page 100 (through the rest of the first bottom node, the top node and the
   * second bottom node) and re-checks what it found, while a writer erases page 100, which empties and
   * frees the second bottom node.
   */
  function cursorVsErase(freeNodes: 'rcu' | 'immediately') {
    return {
      name: `xa_state cursor vs erase (${freeNodes})`,
      cpus: 2,
      setup(m: Machine) {
        const rcu = new Rcu(m);
        const t = new PageCacheTree('race', rcu, freeNodes);
        const mem = new PhysicalMemory({ size: 4 * 1024 * 1024 });
        const [a, b] = [mem.allocPages(0), mem.allocPages(0)];
        runSync(t.store(62, a));
        runSync(t.store(100, b));
        const seen: (Page | null)[] = [];
        m.spawn(0, 'reader', function* (): Kernel<void> {
          yield* rcu.readLock();
          const xas = new XaState(t, 62);
          seen.push(yield* xas.nextEntry(200));
          seen.push(yield* xas.nextEntry(200));
          if (seen[1] !== null) seen.push(yield* xas.reload());
          yield* rcu.readUnlock();
        });
        m.spawn(1, 'eraser', function* (): Kernel<void> {
          yield* t.erase(100);
          yield* rcu.synchronize();
        });
        return () => {
          if (seen[0] !== a) throw new Error('the cursor missed page 62');
          // Page 100 is found or not; a re-check after it was erased reads the unlinked node's empty slot.
          if (seen[1] !== null && seen[1] !== b) throw new Error('the cursor found a stranger at 100');
          if (seen.length === 3 && seen[2] !== b && seen[2] !== null) throw new Error('bad re-check');
        };
      },
    };
  }

  it('a cursor may go on reading a node unlinked under it: RCU keeps it alive (explored)', () => {
    expect(exploreInTest(cursorVsErase('rcu'), { policy: 'random', runs: 200 }).failure).toBeNull();
  });

  it('without the grace period, the cursor reading the freed node is caught as a use-after-free', () => {
    expect(() => exploreInTest(cursorVsErase('immediately'), { policy: 'random', runs: 200 })).toThrow(
      /used|after it was freed|use-after-free/i,
    );
  });
});
