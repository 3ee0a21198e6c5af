import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { runScaling } from '../scenarios/scaling.js';
import { boot } from '../system.js';
import { defaultFaultHandler } from '../default-fault-handler.js';
import {
  matrixFactory,
  matrixHandlerName,
  matrixHandlerNames,
  TEST_LOCKLESS_NAME,
} from './handler-matrix.js';
import { testLocklessFactory } from './test-lockless-handler.js';
import { FAULT_HANDLERS, UnknownFaultHandlerError } from '../fault-handlers.js';

describe('the test-only lockless handler (plumbing for the speculative designs)', () => {
  it('finishes first-touch faults of anonymous VMAs that have an anon_vma without mmap_lock; the first fault of each region falls back', () => {
    const r = runScaling({ threads: 2, pagesPerThread: 8, churn: true, faultHandler: testLocklessFactory });
    expect(r.handler).toBe('test-lockless');
    expect(r.faults).toBe(16);
    // Each region's first write finds no anon_vma (allocating one needs mmap_lock), the other 7 are lockless.
    expect(r.speculative).toEqual({
      attempts: 16,
      handled: 14,
      aborts: {
        present: 0,
        no_vma: 0,
        vma_locked: 0,
        vma_changed: 0,
        not_private_anon: 0,
        no_anon_vma: 2,
        access: 0,
        retry: 0,
      },
    });
  });

  it('falls back for a write to a present page (COW) and an access outside every VMA', () => {
    const sys = boot({ faultHandler: testLocklessFactory });
    sys.spawnProcess('p', function* (u) {
      u.catchSignal('SIGSEGV');
      const r = yield* u.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      if (!r.ok) return;
      yield* u.load8(r.value); // zero page: no anon_vma yet, falls back
      yield* u.store8(r.value, 1); // present: COW of the zero page, falls back
      try {
        yield* u.load8((r.value + 1) << 30);
      } catch {
        // SIGSEGV MAPERR, found by the classic path after the fallback
      }
    });
    expect(sys.run().ok).toBe(true);
    const s = sys.faultHandler.speculativeStats?.();
    expect(s?.handled).toBe(0);
    expect(s?.aborts.no_anon_vma).toBe(1);
    expect(s?.aborts.present).toBe(1);
    expect(s?.aborts.no_vma).toBe(1);
  });
});

describe('the kernel test matrix (SPF_FAULT_HANDLER)', () => {
  it(`boot() without a handler boots the matrix's handler (${matrixHandlerName()} in this run)`, () => {
    expect(boot().faultHandler.name).toBe(matrixHandlerName());
    expect(boot({ faultHandler: testLocklessFactory }).faultHandler.name).toBe('test-lockless');
    expect(defaultFaultHandler()(boot().env).name).toBe(matrixHandlerName());
  });

  it('runs every registered handler but classic (the designs); an unknown name lists the choices', () => {
    expect(matrixHandlerNames()).toEqual(['dufour', 'lespinasse', 'pervma']);
    expect(matrixFactory(TEST_LOCKLESS_NAME)).toBe(testLocklessFactory);
    expect(() => matrixFactory('nope')).toThrow(UnknownFaultHandlerError);
    expect(() => matrixFactory('nope')).toThrow(
      `choose one of ${[...FAULT_HANDLERS.map((h) => h.name), TEST_LOCKLESS_NAME].join(', ')}`,
    );
  });
});
