import { describe, expect, it } from 'vitest';
import { FaultSpecConfigError } from './fault-spec-config-error.js';

describe('FaultSpecConfigError', () => {
  it('names the handler, every option in the combination and the reason', () => {
    const e = new FaultSpecConfigError(
      'dufour',
      ['specPgtableAlloc', 'freePgtablesUnderPtl: false'],
      'tables freed without the lock',
    );
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('FaultSpecConfigError');
    expect(e.options).toEqual(['specPgtableAlloc', 'freePgtablesUnderPtl: false']);
    expect(e.message).toBe(
      'dufour fault handler: specPgtableAlloc with freePgtablesUnderPtl: false is refused: tables freed without the lock',
    );
  });
});
