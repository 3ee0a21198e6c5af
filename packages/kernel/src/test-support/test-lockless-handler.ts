import {
  accessError,
  doUserAddrFault,
  FAULT_FLAG_VMA_LOCK,
  type FaultEnv,
  type FaultHandler,
  type FaultHandlerFactory,
  type FaultOutcome,
  handleMmFault,
  type LocklessFaultResult,
  type SpeculativeStats,
  type UserFault,
  VM_FAULT_COMPLETED,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { PF_P } from '@spf/pagetable';
import { VM_SHARED, vmaEndRead, vmaStartRead } from '@spf/vma';

/** The abort reasons of {@link testLocklessHandler}, each a fault that fell back to mmap_lock. */
export const TEST_LOCKLESS_ABORTS = [
  'present',
  'no_vma',
  'vma_locked',
  'vma_changed',
  'not_private_anon',
  'no_anon_vma',
  'access',
  'retry',
] as const;
export type TestLocklessAbort = (typeof TEST_LOCKLESS_ABORTS)[number];

/**
 * A TEST-ONLY lockless fault handler that exists to exercise the kernel's plumbing for the speculative
 * designs (the registry, `--fault-handler`, the test matrix, the scaling and host-cost benchmarks) before
 * those designs are merged. It is never offered as a design: it is a deliberately small subset of Linux
 * 6.4's per-VMA-lock fault (`lock_vma_under_rcu()` in mm/memory.c and the block in
 * `do_user_addr_fault()` of arch/x86/mm/fault.c that uses it), and @spf/fault-spec's `perVmaLock` is the
 * real model.
 *
 * Its {@link LocklessFaultAttempt} handles only first-touch faults (#PF without the P bit) on private
 * anonymous VMAs that already have an anon_vma: under rcu_read_lock it finds the VMA (`mm.findVmaRcu`),
 * read-locks it with `vmaStartRead()` (which fails while a writer has marked it with `vma_start_write()`),
 * re-checks that it is still attached and still covers the address, and then runs fault-classic's own
 * `handleMmFault()` with FAULT_FLAG_VMA_LOCK (so `do_anonymous_page()` installs the PTE under the PTE lock).
 * Every other fault falls back to mmap_lock. Linux 6.4 also takes write faults on present PTEs (COW); this
 * handler does not, to stay small.
 *
 * It fills the shared reporting contract: `counters` (attempts, handled and one counter per abort reason)
 * and `speculativeStats()`.
 */
export function testLocklessHandler(env: FaultEnv): FaultHandler {
  const counters: Record<string, number> = { attempts: 0, handled: 0 };
  for (const r of TEST_LOCKLESS_ABORTS) counters[r] = 0;
  const abort = (reason: TestLocklessAbort, flags: number): LocklessFaultResult => {
    counters[reason]++;
    return { kind: 'fallback', flags };
  };

  function* attempt(fault: UserFault, flags: number): Kernel<LocklessFaultResult> {
    counters.attempts++;
    const { mm, address } = fault;
    if ((fault.errorCode & PF_P) !== 0) return abort('present', flags);
    yield* mm.rcu.readLock();
    const vma = yield* mm.findVmaRcu(address);
    if (vma === null || vma.vmStart > address) {
      yield* mm.rcu.readUnlock();
      return abort('no_vma', flags);
    }
    const locked = yield* vmaStartRead(vma);
    yield* mm.rcu.readUnlock();
    if (!locked) return abort('vma_locked', flags);
    // The VMA may have been detached or shrunk between the lookup and the lock.
    let reason: TestLocklessAbort | null = null;
    if (vma.detached || address < vma.vmStart || address >= vma.vmEnd) reason = 'vma_changed';
    else if (!vma.isAnonymous() || (vma.vmFlags & VM_SHARED) !== 0) reason = 'not_private_anon';
    else if (vma.anonVma === null) reason = 'no_anon_vma';
    else if (accessError(fault.errorCode, vma)) reason = 'access';
    if (reason !== null) {
      yield* vmaEndRead(vma);
      return abort(reason, flags);
    }
    const ret = yield* handleMmFault(env, mm, vma, address, flags | FAULT_FLAG_VMA_LOCK, fault.task);
    // RETRY and COMPLETED mean the handler already dropped the VMA lock (release_fault_lock()).
    if ((ret & VM_FAULT_RETRY) !== 0) return abort('retry', flags);
    if ((ret & VM_FAULT_COMPLETED) === 0) yield* vmaEndRead(vma);
    counters.handled++;
    return { kind: 'done', ret };
  }

  return {
    name: 'test-lockless',
    counters,
    speculativeStats(): SpeculativeStats {
      const aborts: Record<string, number> = {};
      for (const r of TEST_LOCKLESS_ABORTS) aborts[r] = counters[r];
      return { attempts: counters.attempts, handled: counters.handled, aborts };
    },
    handleUserFault(fault: UserFault): Kernel<FaultOutcome> {
      return doUserAddrFault(env, fault, attempt);
    },
  };
}

/** {@link testLocklessHandler} as the factory `boot({ faultHandler })` takes (it has no options). */
export const testLocklessFactory: FaultHandlerFactory = testLocklessHandler;
