import { classicFaultHandler } from '@spf/fault-classic';
import { describe, expect, it } from 'vitest';
import { checkScalingOptions, runScaling } from './scaling.js';

describe('the scaling scenario at the size of the machine', () => {
  it('accepts one faulting thread per CPU up to the 1,024 CPUs a machine has, one fewer with the churn thread', () => {
    expect(() => checkScalingOptions(1024, 64)).not.toThrow();
    expect(() => checkScalingOptions(1025, 64)).toThrow(/from 1 to 1024/);
    expect(() => checkScalingOptions(1023, 64, true)).not.toThrow();
    expect(() => checkScalingOptions(1024, 64, true)).toThrow(/from 1 to 1023 \(the churn thread/);
    expect(() => runScaling({ threads: 1024, pagesPerThread: 1, churn: true })).toThrow(RangeError);
  });

  it('runs more threads than the old limit of 512, each taking its own faults', () => {
    const r = runScaling({ threads: 513, pagesPerThread: 1 });
    expect(r.run.ok).toBe(true);
    expect(r.faults).toBe(513);
    expect(r.faultsPerSec).toBeGreaterThan(0);
  });

  it('calls the probe once after mapping and once after the last thread faulted, before teardown', () => {
    const phases: string[] = [];
    const r = runScaling({ threads: 3, pagesPerThread: 2, probe: (p) => phases.push(p) });
    expect(r.run.ok).toBe(true);
    expect(phases).toEqual(['mapped', 'faulted']);
  });

  it('counts the locked RMWs on the rwsem mmap_lock line as the trace shows them, and none for the range lock', () => {
    // The classic handler, whatever the test matrix's default: every one of its faults takes mmap_lock (at
    // least a lock and an unlock RMW), which the lower bound below relies on; the speculative designs skip it.
    const r = runScaling({ threads: 4, pagesPerThread: 8, trace: true, faultHandler: classicFaultHandler });
    let traced = 0;
    for (const e of r.run.trace ?? []) if (e.kind === 'rmw' && e.label.endsWith('->mmap_lock')) traced++;
    expect(traced).toBeGreaterThan(2 * r.faults - 1);
    expect(r.mmapLockRmws).toBe(traced);
    expect(runScaling({ threads: 2, pagesPerThread: 2, mmapLock: 'range' }).mmapLockRmws).toBeNull();
  });
});
