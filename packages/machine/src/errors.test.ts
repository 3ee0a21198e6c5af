import { describe, expect, it } from 'vitest';
import {
  KernelAssertionError,
  KernelFault,
  kassert,
  MachineConfigError,
  ScheduleDivergenceError,
  ScheduleFormatError,
  UseAfterFreeError,
} from './errors.js';

describe('error classes', () => {
  it('carry their names, and kernel faults their kind', () => {
    expect(new MachineConfigError('m').name).toBe('MachineConfigError');
    expect(new ScheduleFormatError('m').name).toBe('ScheduleFormatError');
    expect(new ScheduleDivergenceError('m').name).toBe('ScheduleDivergenceError');
    const f = new KernelFault('oops', 'bad');
    expect([f.name, f.kind, f.message]).toEqual(['KernelFault', 'oops', 'bad']);
    const a = new KernelAssertionError('x != y');
    expect([a.name, a.kind, a.message]).toEqual(['KernelAssertionError', 'assertion', 'x != y']);
    expect(a).toBeInstanceOf(KernelFault);
    const u = new UseAfterFreeError('frame 3');
    expect([u.name, u.kind, u.message]).toEqual(['UseAfterFreeError', 'use-after-free', 'frame 3']);
    expect(u).toBeInstanceOf(KernelFault);
  });
});

describe('kassert', () => {
  it('throws a KernelAssertionError with the message when the condition is false', () => {
    expect(() => kassert(true, 'never')).not.toThrow();
    expect(() => kassert(1, 'never')).not.toThrow();
    expect(() => kassert(false, 'counter is 1')).toThrow(new KernelAssertionError('counter is 1'));
    expect(() => kassert(0, 'zero')).toThrow(KernelAssertionError);
    expect(() => kassert(null, () => 'made lazily')).toThrow(new KernelAssertionError('made lazily'));
  });

  it('builds a lazy message only when the assertion fails', () => {
    let built = 0;
    kassert(true, () => {
      built++;
      return 'x';
    });
    expect(built).toBe(0);
  });
});
