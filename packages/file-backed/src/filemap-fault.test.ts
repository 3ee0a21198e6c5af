import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { fileRead, fileTruncate } from './file-ops.js';
import { makeFileFixture, must, patternByte } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

describe('file mappings: filemap_fault, readahead, fault-around', () => {
  it('a read after evict is one major fault that reads around it; neighbours come mapped by fault-around', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(3, 64);
    fx.evict(f);
    expect(f.mapping.nrpages).toBe(0);
    fx.mmapFile(A, 64, PROT_READ, MAP_PRIVATE, f);
    expect(fx.touch(A + 5, 'r')).toEqual({ ok: true, value: patternByte(3, 0, 5) });
    expect([fx.task.minflt, fx.task.majflt]).toEqual([0, 1]);
    // read-around: ra_pages = 32 (read_ahead_kb 128) from max(0, 0 - 16) = 0; PG_readahead on page 24.
    expect(f.mapping.iPages.entries().map(([i]) => i)).toEqual([...Array(32).keys()]);
    expect(f.mapping.iPages.peek(24)?.test('readahead')).toBe(true);
    // Fault-around of the retried fault mapped the 16-page window.
    for (let p = 0; p < 16; p++) expect(fx.present(A + p * P)).toBe(true);
    expect(fx.present(A + 16 * P)).toBe(false);
    // Page 16: minor fault, fault-around maps 16..31 except the PG_readahead page 24.
    expect(fx.touch(A + 16 * P, 'r')).toEqual({ ok: true, value: patternByte(3, 16, 0) });
    expect([fx.task.minflt, fx.task.majflt]).toEqual([1, 1]);
    expect(fx.present(A + 23 * P)).toBe(true);
    expect(fx.present(A + 24 * P)).toBe(false);
    expect(fx.present(A + 25 * P)).toBe(true);
    // Page 24 hits PG_readahead: async readahead of the next window, the lock dropped: a retried, major fault.
    expect(fx.touch(A + 24 * P, 'r')).toEqual({ ok: true, value: patternByte(3, 24, 0) });
    expect([fx.task.minflt, fx.task.majflt]).toEqual([1, 2]);
    expect(f.mapping.nrpages).toBe(64);
    expect(fx.env.vmstat.retries).toBe(2);
  });

  it('a touch past end of file is SIGBUS; truncate unmaps the cut part', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(1, 4);
    fx.mmapFile(A, 8, PROT_READ, MAP_SHARED, f);
    expect(fx.touch(A + 5 * P, 'r')).toEqual({ kind: 'sigbus', address: A + 5 * P });
    expect(fx.touch(A + 3 * P, 'r')).toEqual({ ok: true, value: patternByte(1, 3, 0) });
    expect(fx.present(A + 3 * P)).toBe(true);
    must(fx.run(fileTruncate(f, 2 * P)));
    expect(fx.present(A + 3 * P)).toBe(false);
    expect(fx.present(A + 1 * P)).toBe(true);
    expect(fx.touch(A + 3 * P, 'r')).toEqual({ kind: 'sigbus', address: A + 3 * P });
    expect(must(fx.run(fileRead(f, 3 * P, 1))).length).toBe(0);
  });

  it('a shared write goes through page_mkwrite, dirties the page, and reaches the file', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(2, 4);
    fx.mmapFile(A, 4, PROT_READ | PROT_WRITE, MAP_SHARED, f);
    expect(fx.touch(A + P, 'r')).toEqual({ ok: true, value: patternByte(2, 1, 0) });
    const page = f.mapping.iPages.peek(1);
    expect(page?.test('dirty')).toBe(false);
    expect(fx.touch(A + P, 'w', 0x77)).toEqual({ ok: true, value: 0 });
    expect(page?.test('dirty')).toBe(true);
    expect(must(fx.run(fileRead(f, P, 1)))[0]).toBe(0x77);
  });
});
