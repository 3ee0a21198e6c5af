import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell, explore, kassert, Machine, type Scenario } from './index.js';

const lostUpdate = (atomic: boolean): Scenario => ({
  cpus: 2,
  setup(m) {
    const c = new AtomicCell(0, 'counter');
    const plain = new Cell(0, c.line);
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `inc${i}`, function* () {
        if (atomic) yield* c.fetchAdd(1);
        else {
          const v = yield* plain.load();
          yield* plain.store(v + 1);
        }
      });
    }
    return () =>
      kassert(
        (atomic ? c.value : plain.value) === 2,
        `counter is ${atomic ? c.value : plain.value}, expected 2`,
      );
  },
});

describe('smoke', () => {
  it('runs', () => {
    const m = new Machine({ cpus: 2 });
    const c = new AtomicCell(0, 'x');
    m.spawn(0, 'a', function* () {
      yield* c.fetchAdd(1);
    });
    m.spawn(1, 'b', function* () {
      yield* c.fetchAdd(1);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(c.value).toBe(2);
  });
  it('finds lost update', () => {
    for (const policy of ['random', 'pct', 'dfs'] as const) {
      const r = explore(lostUpdate(false), { policy, runs: 200 });
      expect(r.failure?.kind, policy).toBe('assertion');
    }
    const ok = explore(lostUpdate(true), { policy: 'dfs', bound: 3 });
    expect(ok.exhausted).toBe(true);
    expect(ok.failure).toBeNull();
  });
});
