import { Machine } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { smpMb, smpRmb, smpWmb } from './barriers.js';

/** The effect kinds the task on CPU 0 performed. */
function kindsOf(body: () => Generator<unknown, void, unknown>): string[] {
  const m = new Machine({ cpus: 1, trace: true });
  m.spawn(0, 't', body as never);
  const r = m.run();
  expect(r.failure).toBeNull();
  return (r.trace ?? []).filter((e) => e.task === 't').map((e) => e.kind);
}

describe('barriers (x86-64, TSO)', () => {
  it('smp_mb() is one full fence', () => {
    const kinds = kindsOf(function* () {
      yield* smpMb();
    });
    expect(kinds.filter((k) => k === 'fence')).toHaveLength(1);
  });

  it('smp_rmb() and smp_wmb() are compiler barriers only: no effect at all', () => {
    const base = kindsOf(function* () {});
    const kinds = kindsOf(function* () {
      yield* smpRmb();
      yield* smpWmb();
    });
    expect(kinds).toEqual(base);
    expect(kinds).not.toContain('fence');
  });
});
