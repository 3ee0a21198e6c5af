import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSync } from '@spf/machine';
import { VmaTree } from './vma-tree.js';

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
          { maxLength: 300 },
        ),
        (ops: Op[]) => {
          const t = new VmaTree<number>();
          const model: { start: number; end: number; value: number }[] = [];
          let id = 0;
          for (const op of ops) {
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
            const retired = tx.commit();
            for (const n of retired) n.poison('test');
            expect(t.validate()).toEqual([]);
            if (before && retired.length === 0 && t.root !== before) expect(before.poisoned).toBeNull();
          }
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
