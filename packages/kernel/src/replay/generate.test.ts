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
        if (op.kind === 'mmap' || op.kind === 'munmap' || op.kind === 'mprotect' || op.kind === 'pagemap')
          expect(op.off + op.npages).toBeLessThanOrEqual(32);
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

  it('mixes files with anonymous memory only when asked, and keeps the anonymous scripts unchanged', () => {
    const anon = Array.from({ length: 40 }, (_, seed) => parseScript(generateScript(seed))).flat();
    expect(anon.some((o) => o.kind === 'mmap' && o.source.kind === 'file')).toBe(false);
    expect(new Set(anon.map((o) => o.kind)).has('file')).toBe(false);
    // files: 0 is the default: the same text as before the option existed.
    expect(generateScript(5, { files: 0 })).toBe(generateScript(5));

    const ops = Array.from({ length: 40 }, (_, seed) =>
      parseScript(generateScript(seed, { files: 3, maxFilePages: 10 })),
    ).flat();
    const kinds = new Set(ops.map((o) => o.kind));
    for (const k of ['file', 'evict', 'truncate', 'read', 'write', 'mmap', 'touch'])
      expect(kinds).toContain(k);
    const fileMaps = ops.filter((o) => o.kind === 'mmap' && o.source.kind === 'file');
    expect(fileMaps.some((o) => o.kind === 'mmap' && o.share === 'shared')).toBe(true);
    expect(fileMaps.some((o) => o.kind === 'mmap' && o.share === 'private')).toBe(true);
    expect(ops.some((o) => o.kind === 'mmap' && o.source.kind === 'anon')).toBe(true);
    for (const o of ops) {
      if (o.kind === 'file' || o.kind === 'truncate') expect(o.npages).toBeLessThanOrEqual(10);
      if (o.kind === 'file' || o.kind === 'evict' || o.kind === 'read') expect(o.id).toBeLessThanOrEqual(3);
    }
    // Bad ids and existing files are generated too (EBADF, EEXIST).
    const created = new Set<number>();
    let badId = false;
    let again = false;
    for (let seed = 0; seed < 40; seed++) {
      created.clear();
      for (const o of parseScript(generateScript(seed, { files: 3, maxFilePages: 10 }))) {
        if (o.kind === 'file') {
          if (created.has(o.id)) again = true;
          created.add(o.id);
        } else if ((o.kind === 'read' || o.kind === 'evict') && !created.has(o.id)) badId = true;
      }
    }
    expect(badId).toBe(true);
    expect(again).toBe(true);
  });

  it('rejects a bad files count', () => {
    expect(() => generateScript(1, { files: 64 })).toThrow(/files must be an integer from 0 to 63/);
    expect(() => generateScript(1, { files: 1.5 })).toThrow(/files must be an integer/);
  });

  it('rejects a bad window', () => {
    expect(() => generateScript(1, { window: 0 })).toThrow(/window must be an integer from 1 to 65536/);
  });
});
