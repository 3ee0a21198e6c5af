import { runSync } from '@spf/machine';
import { MAP_PRIVATE, PROT_READ } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_VMA_LOCK,
  FAULT_FLAG_WRITE,
} from './fault-flags.js';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';
import { faultFlagAllowRetryFirst, releaseFaultLock } from './vm-fault.js';

const A = 0x2000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('struct vm_fault helpers', () => {
  it('fault_flag_allow_retry_first: only a first attempt that allows a retry may return VM_FAULT_RETRY', () => {
    expect(faultFlagAllowRetryFirst(FAULT_FLAG_ALLOW_RETRY)).toBe(true);
    expect(faultFlagAllowRetryFirst(FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_WRITE)).toBe(true);
    expect(faultFlagAllowRetryFirst(FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_TRIED)).toBe(false);
    expect(faultFlagAllowRetryFirst(FAULT_FLAG_TRIED)).toBe(false);
    expect(faultFlagAllowRetryFirst(0)).toBe(false);
    expect(faultFlagAllowRetryFirst(FAULT_FLAG_WRITE)).toBe(false);
  });

  it('release_fault_lock drops mmap_lock for a fault under mmap_lock and leaves the VMA lock alone', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ, MAP_PRIVATE);
    const vmf = fx.vmfAt(A, FAULT_FLAG_ALLOW_RETRY);
    runSync(fx.mm.mmapReadLock());
    runSync(vmf.vma.vmLock.downRead());
    runSync(releaseFaultLock(vmf));
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    expect(vmf.vma.vmLock.readers()).toBe(1);
    runSync(vmf.vma.vmLock.upRead());
  });

  it('release_fault_lock drops the per-VMA lock for a fault that holds one (FAULT_FLAG_VMA_LOCK), not mmap_lock', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ, MAP_PRIVATE);
    const vmf = fx.vmfAt(A, FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_VMA_LOCK);
    runSync(fx.mm.mmapReadLock());
    runSync(vmf.vma.vmLock.downRead());
    runSync(releaseFaultLock(vmf));
    expect(vmf.vma.vmLock.isLocked()).toBe(false);
    expect(fx.mm.mmapLock.readers()).toBe(1);
    runSync(fx.mm.mmapReadUnlock());
  });
});
