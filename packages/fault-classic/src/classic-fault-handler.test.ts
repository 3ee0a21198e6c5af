import { runSync } from '@spf/machine';
import { PF_USER, PF_WRITE, ptePfn } from '@spf/pagetable';
import { PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { ClassicFaultHandler, classicFaultHandler } from './classic-fault-handler.js';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('ClassicFaultHandler', () => {
  it('the factory boot() takes builds the classic handler on the system environment', () => {
    const fx = makeFixture();
    const h = classicFaultHandler(fx.env);
    expect(h).toBeInstanceOf(ClassicFaultHandler);
    expect(h.name).toBe('classic');
    // The classic path makes no lockless attempts, so it has no speculative counters.
    expect(h.counters).toBeUndefined();
    expect(h.speculativeStats).toBeUndefined();
    expect(h.mmConfig).toBeUndefined();
  });

  it('handles a user write fault: do_user_addr_fault() maps a fresh page and counts it', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    const h = classicFaultHandler(fx.env);
    const out = runSync(
      h.handleUserFault({ mm: fx.mm, address: A + 8, errorCode: PF_USER | PF_WRITE, task: fx.task }),
    );
    expect(out).toEqual({ kind: 'handled' });
    expect(ptePfn(fx.pte(A))).not.toBe(fx.mem.zeroPfn);
    expect(fx.env.vmstat.pgfault).toBe(1);
    expect(fx.task.minflt).toBe(1);
  });

  it('a fault outside every VMA is SIGSEGV with MAPERR at the faulting address', () => {
    const fx = makeFixture();
    const h = classicFaultHandler(fx.env);
    const out = runSync(h.handleUserFault({ mm: fx.mm, address: A, errorCode: PF_USER, task: null }));
    expect(out).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: A });
  });
});
