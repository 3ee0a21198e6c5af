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

describe('numbered and physical lines (labels written out on first read)', () => {
  it('a numbered line is labelled by its prefix and its number in hex, the same at every read', () => {
    const n = MemoryLine.numbered('page:0x', 0x1a2);
    expect(n.label).toBe('page:0x1a2');
    expect(n.label).toBe('page:0x1a2');
    expect(MemoryLine.numbered('pfn ', 255).label).toBe('pfn ff');
    expect(MemoryLine.numbered('z', 0).label).toBe('z0');
    // Not a physical line.
    expect(n.physicalAddress).toBe(-1);
  });

  it('a line made by name has that label and no physical address', () => {
    const l = new MemoryLine('mm->mmap_lock.count');
    expect(l.label).toBe('mm->mmap_lock.count');
    expect(l.physicalAddress).toBe(-1);
    // Even an empty name stays empty (it is not a number to write out).
    expect(new MemoryLine('').label).toBe('');
  });

  it('a physical line knows its address and is labelled phys:0x<address>', () => {
    const p = MemoryLine.physical(0x12340);
    expect(p.physicalAddress).toBe(0x12340);
    expect(p.label).toBe('phys:0x12340');
    const zero = MemoryLine.physical(0);
    expect([zero.physicalAddress, zero.label]).toEqual([0, 'phys:0x0']);
  });

  it('a trace names a numbered line by its written-out label', () => {
    const line = MemoryLine.numbered('page:0x', 0x2b);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 't', function* () {
      yield* write(line);
    });
    const res = m.run();
    expect(res.ok).toBe(true);
    expect(res.trace!.filter((e) => e.kind === 'write').map((e) => e.label)).toEqual(['page:0x2b']);
  });
});
