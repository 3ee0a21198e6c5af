import { describe, expect, it } from 'vitest';
import { EffectKind, read, rmw, write } from './effects.js';
import { Machine } from './machine.js';
import { defaultCostModel } from './cost-model.js';
import { MemoryLine } from './memory-line.js';

/** Two CPUs each storing to one fresh line, then reading the other's: a run whose hash names the lines. */
function twoLines(): string {
  const a = new MemoryLine('a');
  const b = new MemoryLine('b');
  const m = new Machine({ cpus: 2 });
  m.spawn(0, 'x', function* () {
    yield* write(a);
    yield* read(b);
  });
  m.spawn(1, 'y', function* () {
    yield* write(b);
    yield* read(a);
  });
  const r = m.run();
  expect(r.ok).toBe(true);
  return r.traceHash;
}

describe('a memory line belongs to the machine that first touches it', () => {
  // Keep this test first in the file: vitest runs each test file in a fresh module context, so its first
  // machine is the first machine of the process. A fresh line must be new to that machine as to any later one.
  it('the same program on fresh lines gives the same trace hash on the first machine as on later ones', () => {
    const first = twoLines();
    expect(twoLines()).toBe(first);
    expect(twoLines()).toBe(first);
  });

  it('a line no machine has touched yet has no id and is in no CPU’s cache', () => {
    const line = new MemoryLine('fresh');
    expect(line.label).toBe('fresh');
    expect(line.id).toBe(-1);
    expect(line.owner).toBe(-1);
    expect(line.dirty).toBe(false);
    expect(line.sharers).toBeNull();
    expect(line.sharerCount).toBe(0);
    expect(line.version).toBe(0);
    expect(line.rmws).toBe(0);
  });

  it('a line gets ids in order of first access on each machine, and its state is reset for the next one', () => {
    const a = new MemoryLine('a');
    const b = new MemoryLine('b');
    const m1 = new Machine({ cpus: 1 });
    m1.spawn(0, 't', function* () {
      yield* write(b);
      yield* read(a);
    });
    expect(m1.run().ok).toBe(true);
    expect([a.id, b.id]).toEqual([1, 0]);
    expect([b.owner, b.dirty]).toEqual([0, true]);
    const m2 = new Machine({ cpus: 2, trace: true });
    m2.spawn(1, 't', function* () {
      yield* read(a);
      yield* read(b);
    });
    const res = m2.run();
    expect(res.ok).toBe(true);
    expect([a.id, b.id]).toEqual([0, 1]);
    // CPU 0 of the first machine held `b` modified; on the new machine that state is gone: CPU 1's read goes
    // to memory (DRAM), not to another CPU's cache, and leaves the line exclusive and clean.
    const reads = res.trace!.filter((e) => e.kind === 'read').map((e) => [e.label, e.dur]);
    expect(reads).toEqual([
      ['a', defaultCostModel.dram],
      ['b', defaultCostModel.dram],
    ]);
    expect([b.owner, b.dirty]).toEqual([1, false]);
  });
});

describe('a memory line counts what was done to it', () => {
  it('counts locked RMWs in `rmws` and stores plus RMWs in `version`, over every machine that uses it', () => {
    const line = new MemoryLine('counted');
    for (let run = 0; run < 2; run++) {
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 'a', function* () {
        yield* read(line);
        yield* rmw(line);
        yield* write(line);
      });
      m.spawn(1, 'b', function* () {
        yield* rmw(line);
        yield* rmw(line);
        yield* read(line);
      });
      expect(m.run().ok).toBe(true);
    }
    expect(line.rmws).toBe(6);
    expect(line.version).toBe(8);
  });
});

describe('the unlabelled effects of a line', () => {
  it('are made once and shared by every access (effects are immutable: no allocation per access)', () => {
    const line = new MemoryLine('hot');
    const effects = [line.readEffect, line.writeEffect, line.rmwEffect];
    expect(effects).toEqual([
      { kind: EffectKind.Read, line },
      { kind: EffectKind.Write, line },
      { kind: EffectKind.Rmw, line },
    ]);
    expect(line.readEffect).toBe(effects[0]);
    expect(line.writeEffect).toBe(effects[1]);
    expect(line.rmwEffect).toBe(effects[2]);
  });
});
