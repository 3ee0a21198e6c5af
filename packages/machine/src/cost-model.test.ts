import { describe, expect, it } from 'vitest';
import { AtomicCell } from './cell.js';
import { costModelSources, defaultCostModel, makeCostModel } from './cost-model.js';
import { read, write } from './effects.js';
import { MachineConfigError } from './errors.js';
import { Machine } from './machine.js';
import { MemoryLine } from './memory-line.js';

function incrementTime(cpus: number, shared: boolean, iterations = 200, sockets: 1 | 2 = 1): number {
  const m = new Machine({ cpus, sockets });
  const one = new AtomicCell(0, 'shared counter');
  for (let i = 0; i < cpus; i++) {
    const mine = shared ? one : new AtomicCell(0, `counter${i}`);
    m.spawn(i, `inc${i}`, function* () {
      for (let k = 0; k < iterations; k++) yield* mine.fetchAdd(1);
    });
  }
  const r = m.run();
  expect(r.ok).toBe(true);
  return r.time;
}

describe('cost model', () => {
  it('every default latency has a source', () => {
    for (const k of Object.keys(defaultCostModel)) {
      expect(costModelSources[k as keyof typeof costModelSources]?.length, k).toBeGreaterThan(20);
    }
  });

  for (const n of [2, 8, 32]) {
    it(`${n} CPUs incrementing one line take at least ${n / 2}x longer than ${n} private lines`, () => {
      const shared = incrementTime(n, true);
      const priv = incrementTime(n, false);
      expect(shared).toBeGreaterThanOrEqual((n / 2) * priv);
    });
  }

  it('a single CPU pays nothing for sharing', () => {
    expect(incrementTime(1, true)).toBe(incrementTime(1, false));
  });

  it('MESI: hits are cheap, a line modified elsewhere costs a transfer, a write invalidates readers', () => {
    const m = new Machine({ cpus: 3 });
    const line = new MemoryLine('x');
    const t: Record<string, number> = {};
    const c = defaultCostModel;
    m.spawn(0, 'w', function* () {
      yield* write(line); // first touch: from DRAM
      t.w1 = m.clock(0);
      yield* write(line); // hit
      t.w2 = m.clock(0) - t.w1;
    });
    m.spawn(1, 'r', function* () {
      while (m.clock(1) < 1000) yield* read(new MemoryLine('other'));
      const s = m.clock(1);
      yield* read(line); // modified on CPU 0: transfer
      t.r1 = m.clock(1) - s;
      yield* read(line); // now shared: hit
      t.r2 = m.clock(1) - s - t.r1;
    });
    m.spawn(2, 'r2', function* () {
      while (m.clock(2) < 2000) yield* read(new MemoryLine('other2'));
      const s = m.clock(2);
      yield* read(line); // shared clean copy: LLC hit
      t.r3 = m.clock(2) - s;
      yield* write(line); // invalidate the other sharers
      t.w3 = m.clock(2) - s - t.r3;
    });
    expect(m.run().ok).toBe(true);
    expect(t).toEqual({
      w1: c.dram,
      w2: c.l1Hit,
      r1: c.lineTransfer,
      r2: c.l1Hit,
      r3: c.llcHit,
      w3: c.lineTransfer,
    });
  });

  it('transfers between sockets cost more than within one', () => {
    const one = incrementTime(4, true, 100, 1);
    const two = incrementTime(4, true, 100, 2);
    expect(two).toBeGreaterThan(one * 1.5);
  });
});

describe('makeCostModel', () => {
  it('fills in the defaults, splits the CPUs over two sockets when asked, and applies overrides last', () => {
    expect(makeCostModel(8)).toEqual(defaultCostModel);
    expect(makeCostModel(8, {}, 2).cpusPerSocket).toBe(4);
    expect(makeCostModel(7, {}, 2).cpusPerSocket).toBe(4);
    expect(makeCostModel(8, { cpusPerSocket: 2 }, 2).cpusPerSocket).toBe(2);
    const m = makeCostModel(8, { dram: 100, atomicExtra: 0, cpusPerSocket: 1 });
    expect(m.dram).toBe(100);
    expect(m.atomicExtra).toBe(0); // zero is a valid latency
    expect(m.cpusPerSocket).toBe(1);
    expect(m.llcHit).toBe(defaultCostModel.llcHit);
  });

  it('rejects a socket count other than 1 or 2, and latencies that are not finite numbers >= 0', () => {
    for (const sockets of [0, 3, 1.5]) {
      expect(() => makeCostModel(8, {}, sockets)).toThrow(
        new MachineConfigError(`sockets must be 1 or 2, got ${sockets}`),
      );
    }
    for (const bad of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => makeCostModel(8, { dram: bad })).toThrow(
        new MachineConfigError(`cost model entry 'dram' must be a finite number >= 0, got ${String(bad)}`),
      );
    }
    expect(() => makeCostModel(8, { cpusPerSocket: 0 })).toThrow(
      new MachineConfigError('cpusPerSocket must be at least 1'),
    );
    expect(() => new Machine({ cpus: 2, cost: { pause: -35 } })).toThrow(MachineConfigError);
  });
});
