import { KernelFault, Machine } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { LockError } from './lock-error.js';

describe('LockError', () => {
  it('is a kernel fault of kind "lock" carrying the message, named LockError', () => {
    const e = new LockError('unlock of x by task t, which does not hold it');
    expect(e).toBeInstanceOf(KernelFault);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('LockError');
    expect(e.kind).toBe('lock');
    expect(e.message).toBe('unlock of x by task t, which does not hold it');
    expect(String(e)).toBe('LockError: unlock of x by task t, which does not hold it');
  });

  it('stops a run as a failure of kind "lock" with its message', () => {
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 't', function* () {
      yield* [];
      throw new LockError('misuse');
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe('misuse');
  });
});
