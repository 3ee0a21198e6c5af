import { ptePfn, pteSpecial, pteWrite, pteDirty } from '@spf/pagetable';
import { MM_ANONPAGES, PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;
let fx = makeFixture();

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_anonymous_page', () => {
  it('maps the shared zero page read-only and special on a first-touch read', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 4, PROT_READ | PROT_WRITE);
    const r = fx.touch(A + 100, 'r');
    expect(r).toEqual({ ok: true, value: 0, faults: 1 });
    const pte = fx.pte(A);
    expect(ptePfn(pte)).toBe(fx.mem.zeroPfn);
    expect(pteSpecial(pte)).toBe(true);
    expect(pteWrite(pte)).toBe(false);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
    expect(fx.task.minflt).toBe(1);
    expect(fx.env.vmstat.pgfault).toBe(1);
  });

  it('allocates a zeroed, writable page on a first-touch read when the zero page is off', () => {
    fx = makeFixture({ zeroPage: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0 });
    const pte = fx.pte(A);
    expect(pteWrite(pte)).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    // The page is writable at once: a store does not fault again.
    expect(fx.touch(A, 'w')).toMatchObject({ ok: true, faults: 0 });
    expect(fx.task.minflt).toBe(1);
  });

  it('maps a private zeroed page, dirty and writable, on a first-touch write', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    expect(fx.touch(A + 4096 + 7, 'w', 0x33)).toMatchObject({ ok: true, faults: 1 });
    const pte = fx.pte(A + 4096);
    expect(pteWrite(pte)).toBe(true);
    expect(pteDirty(pte)).toBe(true);
    const page = fx.mem.page(ptePfn(pte));
    expect(page.test('anon')).toBe(true);
    expect(page.mapcount).toBe(1);
    expect(page.refcount).toBe(1);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.touch(A + 4096 + 7, 'r')).toMatchObject({ ok: true, value: 0x33, faults: 0 });
    expect(fx.touch(A + 4096 + 8, 'r')).toMatchObject({ ok: true, value: 0, faults: 0 });
    // The other page is untouched.
    expect(fx.pte(A)).toBe(0n);
  });

  it('maps a read-only VMA page read-only, and reports OOM when memory is exhausted', () => {
    fx = makeFixture({ zeroPage: false, memory: 64 * 4096 });
    fx.mmapAnon(A, 128, PROT_READ);
    let oom = false;
    for (let i = 0; i < 128 && !oom; i++) {
      const r = fx.touch(A + i * 4096, 'r');
      if (!('ok' in r)) {
        expect(r).toEqual({ kind: 'oom', address: A + i * 4096 });
        oom = true;
      } else expect(pteWrite(fx.pte(A + i * 4096))).toBe(false);
    }
    expect(oom).toBe(true);
    // A failed fault is counted in pgfault, not in the task's minflt.
    expect(fx.env.vmstat.pgfault).toBe(fx.task.minflt + 1);
  });
});
