import { dufourSpf } from '@spf/fault-spec';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';

const A = 0x5000_0000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('dufourSpf on a booted system', () => {
  it('handles most faults of a multi-threaded process speculatively and the data is right', () => {
    const sys = boot({ cpus: 2, faultHandler: dufourSpf() });
    const seen: number[] = [];
    sys.spawnProcess('mt', function* (u) {
      yield* u.mmap(A, 32 * 4096, RW, ANON);
      yield* u.store8(A, 1); // anon_vma and the page tables: classic (v12 never allocates them)
      let done = false;
      yield* u.spawnThread(function* (t) {
        for (let p = 16; p < 32; p++) yield* t.store8(A + p * 4096, p);
        done = true;
      }, 1);
      for (let p = 1; p < 16; p++) yield* u.store8(A + p * 4096, p);
      while (!done) yield* u.schedYield();
      for (let p = 0; p < 32; p++) seen.push(yield* u.load8(A + p * 4096));
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(seen).toEqual([1, ...Array.from({ length: 31 }, (_, i) => i + 1)]);
    const stats = sys.faultHandler.speculativeStats?.();
    expect(sys.faultHandler.name).toBe('dufour');
    // 31: every store after the second thread started; the first ran while mm_users was 1 (the shortcut).
    expect(stats?.handled).toBe(31);
    expect(stats?.attempts).toBe(31);
    expect(sys.faultHandler.counters?.speculative_pgfault).toBe(31);
  });
});
