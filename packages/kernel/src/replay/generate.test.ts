import { describe, expect, it } from 'vitest';
import { generateScript } from './generate.js';
import { parseScript } from './parse.js';

describe('generateScript', () => {
  it('is deterministic: the same seed and options give the same script', () => {
    expect(generateScript(7)).toBe(generateScript(7));
    expect(generateScript(7, { ops: 100, window: 16 })).toBe(generateScript(7, { ops: 100, window: 16 }));
    expect(generateScript(7)).not.toBe(generateScript(8));
  });

  it('produces scripts that parse, stay in the window, and end with maps and a full pagemap', () => {
    for (let seed = 0; seed < 200; seed++) {
      const ops = parseScript(generateScript(seed, { ops: 30, window: 32 }));
      expect(ops).toHaveLength(32);
      for (const op of ops) {
        if (op.kind === 'touch') expect(op.page).toBeLessThan(32);
        if (op.kind !== 'touch' && op.kind !== 'maps') expect(op.off + op.npages).toBeLessThanOrEqual(32);
      }
      expect(ops.at(-2)?.kind).toBe('maps');
      expect(ops.at(-1)).toMatchObject({ kind: 'pagemap', off: 0, npages: 32 });
    }
  });

  it('mixes every op and the interesting argument shapes across seeds', () => {
    const ops = Array.from({ length: 50 }, (_, seed) => parseScript(generateScript(seed))).flat();
    const kinds = new Set(ops.map((o) => o.kind));
    expect([...kinds].sort()).toEqual(['maps', 'mmap', 'mprotect', 'munmap', 'pagemap', 'touch']);
    const mmaps = ops.filter((o) => o.kind === 'mmap');
    expect(mmaps.some((o) => o.fixed)).toBe(true);
    expect(mmaps.some((o) => !o.fixed)).toBe(true);
    expect(mmaps.some((o) => o.share === 'shared')).toBe(true);
    expect(mmaps.some((o) => o.npages === 0)).toBe(true);
    expect(mmaps.some((o) => o.prot.exec)).toBe(true);
    expect(ops.some((o) => o.kind === 'munmap' && o.npages === 0)).toBe(true);
    expect(ops.some((o) => o.kind === 'touch' && o.access === 'w')).toBe(true);
    // Overlapping NOREPLACE maps (the EEXIST path): some mmap overlaps an earlier one in the same script.
    const overlapping = Array.from({ length: 50 }, (_, seed) => parseScript(generateScript(seed))).some(
      (s) => {
        const m = s.filter((o) => o.kind === 'mmap');
        return m.some((b, j) =>
          m
            .slice(0, j)
            .some((a) => !b.fixed && b.npages > 0 && a.off < b.off + b.npages && b.off < a.off + a.npages),
        );
      },
    );
    expect(overlapping).toBe(true);
  });

  it('honours the switches', () => {
    const ops = Array.from({ length: 30 }, (_, seed) =>
      parseScript(generateScript(seed, { shared: false, exec: false, badArgs: false })),
    ).flat();
    for (const op of ops) {
      if (op.kind === 'mmap') {
        expect(op.share).toBe('private');
        expect(op.prot.exec).toBe(false);
      }
      if (op.kind === 'mmap' || op.kind === 'munmap' || op.kind === 'mprotect')
        expect(op.npages).toBeGreaterThan(0);
    }
  });

  it('rejects a bad window', () => {
    expect(() => generateScript(1, { window: 0 })).toThrow(/window must be an integer from 1 to 65536/);
  });
});
