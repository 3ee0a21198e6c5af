import { runSync } from '@spf/machine';
import { PF_USER, PF_WRITE } from '@spf/pagetable';
import { MAP_GROWSDOWN, MAP_PRIVATE, PROT_READ, PROT_WRITE, type VmArea } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { classicFaultHandler } from './classic-fault-handler.js';
import { doUserAddrFaultRetry, lockMmAndFindVma } from './do-user-addr-fault.js';
import type { FaultEnv } from './fault-env.js';
import { FAULT_FLAG_TRIED, VM_FAULT_RETRY } from './fault-flags.js';
import { mmAccountFault } from './handle-mm-fault.js';
import { makeFixture } from './test-support/fixture.js';
import { type UserFaultPaths, withUserFaultPaths } from './user-fault-paths.js';

const A = 0x1000_0000;

/** Paths that record each call and then run the package's own. */
function recording(calls: string[]): UserFaultPaths {
  return {
    *retryLoop(env, fault, flags) {
      calls.push(`loop ${fault.address.toString(16)}`);
      return yield* doUserAddrFaultRetry(env, fault, flags);
    },
    mmAccountFault(env, task, flags, ret) {
      calls.push(
        `account ${(ret & VM_FAULT_RETRY) !== 0 ? 'retry' : 'done'}${(flags & FAULT_FLAG_TRIED) !== 0 ? ' tried' : ''}`,
      );
      mmAccountFault(env, task, flags, ret);
    },
  };
}

describe('the userFaultPaths injection point', () => {
  it('do_user_addr_fault runs the injected retry loop, and handle_mm_fault the injected mm_account_fault', () => {
    const calls: string[] = [];
    const fx = makeFixture({ userFaultPaths: recording(calls) });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w', 7)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A + 0x10_0000, 'r')).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(calls).toEqual(['loop 10000000', 'account done', 'loop 10100000']);
    expect(fx.task.minflt).toBe(1);
  });

  it('a loop that answers without faulting in anything is what the task gets', () => {
    const paths: UserFaultPaths = {
      *retryLoop(_env, fault) {
        return { kind: 'sigbus', address: fault.address };
      },
      mmAccountFault() {},
    };
    const fx = makeFixture({ userFaultPaths: paths });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.fault(A, PF_USER | PF_WRITE)).toEqual({ kind: 'sigbus', address: A });
    expect(fx.task.minflt + fx.task.majflt).toBe(0);
  });

  it('withUserFaultPaths hands the paths to the handler through its environment', () => {
    const fx = makeFixture();
    const paths = recording([]);
    let seen: FaultEnv | null = null;
    const handler = withUserFaultPaths((env) => {
      seen = env;
      return classicFaultHandler(env);
    }, paths)(fx.env);
    expect(handler.name).toBe('classic');
    expect((seen as FaultEnv | null)?.userFaultPaths).toBe(paths);
    expect(fx.env.userFaultPaths).toBeUndefined();
  });
});

describe('lockMmAndFindVma', () => {
  it('returns the VMA with mmap_lock held, or null with it released', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    const vma = runSync(lockMmAndFindVma(fx.env, fx.mm, A + 4096));
    expect(vma?.vmStart).toBe(A);
    expect(() => runSync(fx.mm.mmapWriteLock())).toThrow(); // runSync cannot sleep: the read lock is held
    runSync(fx.mm.mmapReadUnlock());
    expect(runSync(lockMmAndFindVma(fx.env, fx.mm, A + 0x10_0000))).toBeNull();
    runSync(fx.mm.mmapWriteLock()); // free: null released it
    runSync(fx.mm.mmapWriteUnlock());
  });

  it('grows a VM_GROWSDOWN stack down to the address', () => {
    const fx = makeFixture();
    const top = 0x7000_0000;
    fx.mmapAnon(top - 4 * 4096, 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
    const vma = runSync(lockMmAndFindVma(fx.env, fx.mm, top - 6 * 4096)) as VmArea;
    runSync(fx.mm.mmapReadUnlock());
    expect(vma.vmStart).toBe(top - 6 * 4096);
    expect(fx.env.vmstat.stackExpansions).toBe(1);
  });
});
