import { PerVmaLockHandler, perVmaLock } from '@spf/fault-spec';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_GROWSDOWN, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';

const A = 0x4000_0000;
const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('a system booted with the per-VMA-lock handler', () => {
  it('finishes the faults of a faulted-in VMA under the VMA lock and reports them in its counters', () => {
    const sys = boot({ cpus: 2, faultHandler: perVmaLock() });
    const h = sys.faultHandler;
    expect(h).toBeInstanceOf(PerVmaLockHandler);
    const seen: number[] = [];
    sys.spawnProcess('pervma', function* (u) {
      yield* u.mmap(A, 8 * P, RW, ANON);
      yield* u.store8(A, 1); // no anon_vma yet: VMA_LOCK_ABORT, the classic path gives it one
      yield* u.spawnThread(function* (t) {
        for (let p = 4; p < 8; p++) yield* t.store8(A + p * P, p);
      }, 1);
      for (let p = 1; p < 4; p++) yield* u.store8(A + p * P, p);
      for (let k = 0; k < 40; k++) yield* u.schedYield();
      for (let p = 0; p < 8; p++) seen.push(yield* u.load8(A + p * P));
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(seen).toEqual([1, 1, 2, 3, 4, 5, 6, 7]);
    expect(h.counters).toMatchObject({ VMA_LOCK_ABORT: 1, VMA_LOCK_SUCCESS: 7, VMA_LOCK_RETRY: 0 });
    expect(h.speculativeStats?.()).toEqual({
      attempts: 8,
      handled: 7,
      aborts: { VMA_LOCK_ABORT: 1, VMA_LOCK_RETRY: 0 },
    });
    expect(sys.vmstat.pgfault).toBe(8);
  });

  it('a stack grown under the mmap read lock stays write-locked until the next mmap_write_unlock() (6.4)', () => {
    const sys = boot({ faultHandler: perVmaLock() });
    const h = sys.faultHandler as PerVmaLockHandler;
    const counts: number[][] = [];
    const snap = () => counts.push([h.counters.VMA_LOCK_SUCCESS, h.counters.VMA_LOCK_ABORT]);
    sys.spawnProcess('stack', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON | MAP_GROWSDOWN);
      yield* u.store8(A + 3 * P, 1); // anon_vma
      yield* u.store8(A - P, 2); // below the stack: no VMA there, the classic path grows it
      snap();
      yield* u.store8(A + 2 * P, 3); // expand_downwards() write-locked the VMA: falls back
      snap();
      yield* u.mmap(A + 64 * P, P, RW, ANON); // any mmap_write_unlock() ends the mark
      yield* u.store8(A + P, 4);
      snap();
    });
    expect(sys.run().ok).toBe(true);
    expect(sys.vmstat.stackExpansions).toBe(1);
    expect(counts).toEqual([
      [0, 2],
      [0, 3],
      [1, 3],
    ]);
  });

  it('with vmaStartWrite.expandStack off, the grown stack is not write-locked', () => {
    const sys = boot({ faultHandler: perVmaLock({ checks: { 'vmaStartWrite.expandStack': false } }) });
    const h = sys.faultHandler as PerVmaLockHandler;
    sys.spawnProcess('stack', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON | MAP_GROWSDOWN);
      yield* u.store8(A + 3 * P, 1);
      yield* u.store8(A - P, 2);
      yield* u.store8(A + 2 * P, 3);
    });
    expect(sys.run().ok).toBe(true);
    expect([h.counters.VMA_LOCK_SUCCESS, h.counters.VMA_LOCK_ABORT]).toEqual([1, 2]);
  });
});
