import { Rcu } from '@spf/locks';
import { exploreInTest, type Kernel, runSync } from '@spf/machine';
import { type Page, PhysicalMemory } from '@spf/pagetable';
import { createRcu } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { PageCacheTree, XA_CHUNK_SIZE } from './page-cache-tree.js';

function pages(n: number): Page[] {
  const mem = new PhysicalMemory({ size: 4 * 1024 * 1024 });
  return Array.from({ length: n }, () => mem.allocPages(0));
}

describe('PageCacheTree (the xarray of i_pages)', () => {
  it('stores and loads by index across heights, and reports misses', () => {
    const t = new PageCacheTree('t', createRcu());
    const [a, b, c] = pages(3);
    runSync(t.store(3, a));
    runSync(t.store(XA_CHUNK_SIZE + 1, b));
    runSync(t.store(5 * XA_CHUNK_SIZE * XA_CHUNK_SIZE + 7, c));
    expect(runSync(t.load(3))).toBe(a);
    expect(runSync(t.load(XA_CHUNK_SIZE + 1))).toBe(b);
    expect(runSync(t.load(5 * XA_CHUNK_SIZE * XA_CHUNK_SIZE + 7))).toBe(c);
    expect(runSync(t.load(4))).toBeNull();
    expect(runSync(t.load(10 ** 9))).toBeNull();
    expect(t.entries().map(([i]) => i)).toEqual([
      3,
      XA_CHUNK_SIZE + 1,
      5 * XA_CHUNK_SIZE * XA_CHUNK_SIZE + 7,
    ]);
    expect(t.count).toBe(3);
    expect(runSync(t.nextMiss(3, 10))).toBe(4);
    expect(runSync(t.prevMiss(3, 10))).toBe(2);
  });

  it('erase empties the tree node by node; a second store at the same index is refused', () => {
    const t = new PageCacheTree('t', createRcu());
    const [a, b] = pages(2);
    runSync(t.store(100, a));
    expect(() => runSync(t.store(100, b))).toThrow(/already occupied/);
    expect(runSync(t.erase(100))).toBe(a);
    expect(runSync(t.erase(100))).toBeNull();
    expect(t.count).toBe(0);
    expect(runSync(t.load(100))).toBeNull();
    expect(() => runSync(t.store(-1, a))).toThrow(/integer >= 0/);
  });

  /** A lockless reader walks to index 100 while a writer erases it (its bottom node becomes empty). */
  function scenario(freeNodes: 'rcu' | 'immediately') {
    return {
      name: `page cache reader vs erase (${freeNodes})`,
      cpus: 2,
      setup(m: import('@spf/machine').Machine) {
        const rcu = new Rcu(m);
        const t = new PageCacheTree('race', rcu, freeNodes);
        const [a, b] = pages(2);
        runSync(t.store(1, a));
        runSync(t.store(100, b));
        let seen: Page | null | undefined;
        m.spawn(0, 'reader', function* (): Kernel<void> {
          yield* rcu.readLock();
          seen = yield* t.load(100);
          yield* rcu.readUnlock();
        });
        m.spawn(1, 'eraser', function* (): Kernel<void> {
          yield* t.erase(100);
          yield* rcu.synchronize();
        });
        return () => {
          if (seen !== null && seen !== b) throw new Error(`reader saw ${String(seen)}`);
        };
      },
    };
  }

  it('a lockless reader racing an erase sees the page or nothing, never a freed node (explored)', () => {
    const res = exploreInTest(scenario('rcu'), { policy: 'random', runs: 300 });
    expect(res.failure).toBeNull();
  });

  it('freeing emptied nodes without a grace period is caught as a use-after-free by the explorer', () => {
    expect(() => exploreInTest(scenario('immediately'), { policy: 'random', runs: 300 })).toThrow(
      /used|after it was freed|use-after-free/i,
    );
  });
});
