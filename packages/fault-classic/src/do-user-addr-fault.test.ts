import { runSync } from '@spf/machine';
import { PF_INSTR, PF_P, PF_PK, PF_RSVD, PF_USER, PF_WRITE } from '@spf/pagetable';
import {
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  type MmapFile,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  type VmArea,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import {
  accessError,
  type LocklessFaultAttempt,
  lockMmAndFindVma,
  type LocklessFaultResult,
  PageTableCorruptionError,
} from './do-user-addr-fault.js';
import {
  FAULT_FLAG_DEFAULT,
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_FALLBACK,
  VM_FAULT_HWPOISON,
  VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags.js';
import { FaultLivelockError, fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_user_addr_fault', () => {
  it('an access to an unmapped address is SIGSEGV MAPERR and maps nothing', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A + 8192, 'r')).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: A + 8192 });
    expect(fx.touch(A - 4096, 'w')).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: A - 4096 });
    expect(fx.touch(0x8000_0000_0000 - 4096, 'r')).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(fx.task.minflt).toBe(0);
    expect(fx.env.vmstat.pgfault).toBe(0);
    expect(fx.pt.tables[1]).toBe(0);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('a write to a read-only VMA is SIGSEGV ACCERR, before and after the page is present', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ);
    expect(fx.touch(A, 'w')).toEqual({ kind: 'sigsegv', code: 'ACCERR', address: A });
    expect(fx.pte(A)).toBe(0n);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true });
    expect(fx.touch(A, 'w')).toEqual({ kind: 'sigsegv', code: 'ACCERR', address: A });
    expect(fx.task.minflt).toBe(1);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('PROT_NONE is ACCERR for reads and writes', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_NONE);
    expect(fx.touch(A, 'r')).toMatchObject({ kind: 'sigsegv', code: 'ACCERR' });
    expect(fx.touch(A, 'w')).toMatchObject({ kind: 'sigsegv', code: 'ACCERR' });
  });

  it('access_error follows arch/x86/mm/fault.c', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_WRITE);
    fx.mmapAnon(A + 4096, 1, PROT_EXEC);
    fx.mmapAnon(A + 8192, 1, PROT_READ);
    const w = fx.mm.findVma(A) as VmArea;
    const x = fx.mm.findVma(A + 4096) as VmArea;
    const r = fx.mm.findVma(A + 8192) as VmArea;
    // Write-only memory can be read on x86 (a read of a non-present page only needs an accessible VMA).
    expect(accessError(PF_USER, w)).toBe(false);
    expect(accessError(PF_USER | PF_WRITE, w)).toBe(false);
    expect(accessError(PF_USER | PF_WRITE, r)).toBe(true);
    expect(accessError(PF_USER | PF_P, r)).toBe(true); // read of a present page: a protection fault
    expect(accessError(PF_USER | PF_INSTR, x)).toBe(false);
    expect(accessError(PF_USER | PF_WRITE | PF_P, x)).toBe(true);
  });

  it('grows a VM_GROWSDOWN stack below its start, but not into the guard gap of the VMA below', () => {
    const fx = makeFixture();
    const stackTop = 0x7000_0000;
    fx.mmapAnon(stackTop - 4 * 4096, 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
    const before = fx.mm.findVma(stackTop - 4096) as VmArea;
    const start = before.vmStart;
    // Touch 3 pages below the stack's start: it grows down to that page.
    expect(fx.touch(start - 3 * 4096 + 5, 'w', 9)).toMatchObject({ ok: true, faults: 1 });
    expect(before.vmStart).toBe(start - 3 * 4096);
    expect(fx.env.vmstat.stackExpansions).toBe(1);
    expect(fx.touch(start - 3 * 4096 + 5, 'r')).toMatchObject({ value: 9 });
    expect(fx.mm.totalVm).toBe(7);
    // A mapping just below the stack: growing to within stack_guard_gap (256 pages) of it is refused.
    const low = before.vmStart - 300 * 4096;
    fx.mmapAnon(low - 4096, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(before.vmStart - 100 * 4096, 'w')).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(fx.touch(before.vmStart - 40 * 4096, 'w')).toMatchObject({ ok: true });
    expect(fx.invariantProblems()).toEqual([]);
  });

  it('a VMA above a gap that is not a stack does not grow', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A - 4096, 'w')).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(fx.env.vmstat.stackExpansions).toBe(0);
  });

  it('a handler that answers VM_FAULT_RETRY forever fails the synchronous fixture with a livelock error instead of hanging', () => {
    const fx = makeFixture({ maxSteps: 5_000 });
    const file = new TestFile(fx.mem);
    file.retryAlways = true;
    fx.mmapFile(A, 1, PROT_READ, MAP_SHARED, file.mmapFile());
    expect(() => fx.fault(A, PF_USER)).toThrow(FaultLivelockError);
    expect(() => fx.fault(A, PF_USER)).toThrow(/fault at 0x10000000 did not finish within 5000 kernel steps/);
    // Every retry went back to ->fault with FAULT_FLAG_TRIED: far more than the one retry a real I/O wait takes.
    expect(fx.env.vmstat.retries).toBeGreaterThan(100);
    // The same file with a pending signal gives up after the first VM_FAULT_RETRY.
    const fy = makeFixture({ signalPending: () => true });
    const again = new TestFile(fy.mem);
    again.retryAlways = true;
    fy.mmapFile(A, 1, PROT_READ, MAP_SHARED, again.mmapFile());
    expect(fy.touch(A, 'r')).toEqual({ kind: 'signal-pending' });
    expect(again.faultCalls).toBe(1);
    fixtureProblems(); // the livelocked fault left the mm mid-fault (mmap_lock held): nothing to check
  });

  it('an ordinary fault stays far below the fixture step limit', () => {
    const fx = makeFixture({ maxSteps: 2_000 });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w', 7)).toMatchObject({ ok: true, faults: 1 });
  });
});

/** A file mapping whose ->fault records the flags it sees and returns `ret` (VM_FAULT_* bits). */
function fileReturning(fx: ReturnType<typeof makeFixture>, ret: number, seen: number[] = []): MmapFile {
  const file = new TestFile(fx.mem);
  const ops = file.ops();
  ops.fault = function* (vmf) {
    seen.push(vmf.flags);
    return ret;
  };
  return { file, ops, readable: true, writable: true };
}

describe('do_user_addr_fault: flags, retries and results', () => {
  it('turns the error code into fault flags: default retry flags plus USER, WRITE and INSTRUCTION', () => {
    const fx = makeFixture();
    const seen: number[] = [];
    fx.mmapFile(
      A,
      1,
      PROT_READ | PROT_WRITE | PROT_EXEC,
      MAP_SHARED,
      fileReturning(fx, VM_FAULT_SIGBUS, seen),
    );
    fx.fault(A, PF_USER | PF_INSTR);
    fx.fault(A, PF_USER | PF_WRITE);
    fx.fault(A, 0);
    expect(seen).toEqual([
      FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | FAULT_FLAG_INSTRUCTION,
      FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | FAULT_FLAG_WRITE,
      FAULT_FLAG_DEFAULT,
    ]);
  });

  it('maps each VM_FAULT_* error to its signal and releases mmap_lock every time', () => {
    const fx = makeFixture();
    const cases: [number, unknown][] = [
      [VM_FAULT_OOM, { kind: 'oom', address: A }],
      [VM_FAULT_SIGBUS, { kind: 'sigbus', address: A }],
      [VM_FAULT_HWPOISON, { kind: 'sigbus', address: A }],
      [VM_FAULT_HWPOISON_LARGE, { kind: 'sigbus', address: A }],
      [VM_FAULT_SIGSEGV, { kind: 'sigsegv', code: 'MAPERR', address: A }],
      [VM_FAULT_OOM | VM_FAULT_SIGBUS, { kind: 'oom', address: A }],
    ];
    let at = A;
    for (const [ret, outcome] of cases) {
      fx.mmapFile(at, 1, PROT_READ, MAP_SHARED, fileReturning(fx, ret));
      expect(fx.fault(at, PF_USER)).toEqual({ ...(outcome as object), address: at });
      expect(fx.mm.mmapLock.isLocked()).toBe(false);
      at += 2 * 4096;
    }
    expect(fx.env.vmstat.pgfault).toBe(cases.length);
    expect(fx.task.minflt).toBe(0);
  });

  it('an error bit it does not know (VM_FAULT_FALLBACK alone) is a kernel bug, not a signal', () => {
    const fx = makeFixture();
    fx.mmapFile(A, 1, PROT_READ, MAP_SHARED, fileReturning(fx, VM_FAULT_FALLBACK));
    expect(() => fx.fault(A, PF_USER)).toThrow(/handle_mm_fault returned unexpected bits 0x800/);
    expect(() => fx.fault(A, PF_USER)).toThrow(expect.objectContaining({ name: 'KernelFault', kind: 'bug' }));
    fixtureProblems();
  });

  it('a #PF with the RSVD bit is a corrupt page table: an oops, before any lock is taken', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(() => fx.fault(A, PF_USER | PF_RSVD | PF_P)).toThrow(PageTableCorruptionError);
    expect(() => fx.fault(A, PF_USER | PF_RSVD | PF_P)).toThrow(/reserved bits/);
    expect(() => fx.fault(A, PF_USER | PF_RSVD | PF_P)).toThrow(
      expect.objectContaining({ name: 'PageTableCorruptionError', kind: 'pgtable-bad' }),
    );
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    expect(fx.env.vmstat.pgfault).toBe(0);
  });

  it('a protection-key violation is SEGV_PKUERR, even on an accessible VMA', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'w');
    expect(fx.fault(A, PF_USER | PF_P | PF_PK)).toEqual({ kind: 'sigsegv', code: 'PKUERR', address: A });
    expect(fx.fault(A, PF_USER | PF_P | PF_WRITE | PF_PK)).toMatchObject({ code: 'PKUERR' });
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('VM_FAULT_RETRY: retried once with FAULT_FLAG_TRIED under a freshly taken mmap_lock, then counted as major', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    file.retryFirst = true;
    fx.mmapFile(A, 1, PROT_READ, MAP_SHARED, file.mmapFile());
    expect(fx.fault(A, PF_USER)).toEqual({ kind: 'handled' });
    expect(file.faultCalls).toBe(2);
    expect(fx.env.vmstat.retries).toBe(1);
    expect(fx.task).toMatchObject({ minflt: 0, majflt: 1 });
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 1, faults: 0 });
  });

  it('VM_FAULT_RETRY with a signal pending returns to user mode without retrying or unlocking twice', () => {
    const fx = makeFixture({ signalPending: () => true });
    const file = new TestFile(fx.mem);
    file.retryFirst = true;
    fx.mmapFile(A, 1, PROT_READ, MAP_SHARED, file.mmapFile());
    expect(fx.fault(A, PF_USER)).toEqual({ kind: 'signal-pending' });
    expect(file.faultCalls).toBe(1);
    expect(fx.env.vmstat.retries).toBe(0);
    expect(fx.env.vmstat.pgfault).toBe(0);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('a pending signal does not abandon a fault that completed without VM_FAULT_RETRY', () => {
    const fx = makeFixture({ signalPending: () => true });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.fault(A, PF_USER | PF_WRITE)).toEqual({ kind: 'handled' });
    expect(fx.task.minflt).toBe(1);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });
});

describe('do_user_addr_fault: the lockless attempt before mmap_lock', () => {
  /** An attempt that records what it was given and answers `result`, checking mmap_lock is not held. */
  function attempt(fx: () => ReturnType<typeof makeFixture>, result: LocklessFaultResult) {
    const seen: { address: number; flags: number; locked: boolean }[] = [];
    const fn: LocklessFaultAttempt = function* (fault, flags) {
      seen.push({ address: fault.address, flags, locked: fx().mm.mmapLock.isLocked() });
      return result;
    };
    return { fn, seen };
  }

  it('runs before mmap_lock with the flags from the error code; "done" finishes without the classic path', () => {
    let fx!: ReturnType<typeof makeFixture>;
    const a = attempt(() => fx, { kind: 'done', ret: 0 });
    fx = makeFixture({ lockless: a.fn });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.fault(A, PF_USER | PF_WRITE)).toEqual({ kind: 'handled' });
    expect(a.seen).toEqual([
      { address: A, flags: FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | FAULT_FLAG_WRITE, locked: false },
    ]);
    // The classic path never ran: nothing mapped, nothing counted, the lock never taken.
    expect(fx.pte(A)).toBe(0n);
    expect(fx.env.vmstat.pgfault).toBe(0);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('"done" with an error bit becomes the same signal the classic path gives', () => {
    for (const [ret, kind] of [
      [VM_FAULT_SIGBUS, 'sigbus'],
      [VM_FAULT_OOM, 'oom'],
    ] as const) {
      let fx!: ReturnType<typeof makeFixture>;
      const a = attempt(() => fx, { kind: 'done', ret });
      fx = makeFixture({ lockless: a.fn });
      fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
      expect(fx.fault(A, PF_USER)).toEqual({ kind, address: A });
    }
    let fx!: ReturnType<typeof makeFixture>;
    const a = attempt(() => fx, { kind: 'done', ret: VM_FAULT_SIGSEGV });
    fx = makeFixture({ lockless: a.fn });
    expect(fx.fault(A, PF_USER)).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: A });
  });

  it('"fallback" runs the classic path under mmap_lock with the flags the attempt returned', () => {
    let fx!: ReturnType<typeof makeFixture>;
    const a = attempt(() => fx, {
      kind: 'fallback',
      flags: FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | FAULT_FLAG_TRIED,
    });
    fx = makeFixture({ lockless: a.fn });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0, faults: 1 });
    expect(a.seen).toHaveLength(1);
    // FAULT_FLAG_TRIED from the attempt reached mm_account_fault(): the fault counts as major.
    expect(fx.task).toMatchObject({ minflt: 0, majflt: 1 });
  });

  it('"outcome" is returned as it is, and kernel addresses never reach the attempt', () => {
    let fx!: ReturnType<typeof makeFixture>;
    const a = attempt(() => fx, {
      kind: 'outcome',
      outcome: { kind: 'sigsegv', code: 'ACCERR', address: A },
    });
    fx = makeFixture({ lockless: a.fn });
    fx.mmapAnon(A, 1, PROT_READ);
    expect(fx.fault(A, PF_USER | PF_WRITE)).toEqual({ kind: 'sigsegv', code: 'ACCERR', address: A });
    expect(fx.fault(0x8000_0000_0000, PF_USER)).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(a.seen).toHaveLength(1);
  });

  it('"outcome" is final even where the classic path would have handled the fault', () => {
    let fx!: ReturnType<typeof makeFixture>;
    const a = attempt(() => fx, { kind: 'outcome', outcome: { kind: 'sigbus', address: A } });
    fx = makeFixture({ lockless: a.fn });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.fault(A, PF_USER)).toEqual({ kind: 'sigbus', address: A });
    // The classic path never ran: nothing mapped, the lock never taken.
    expect(fx.pte(A)).toBe(0n);
    expect(fx.env.vmstat.pgfault).toBe(0);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });
});

describe('lock_mm_and_find_vma', () => {
  it('returns the VMA with mmap_lock held once for reading, or null with it released', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    const vma = runSync(lockMmAndFindVma(fx.env, fx.mm, A + 4096));
    expect(vma?.vmStart).toBe(A);
    expect(fx.mm.mmapLock.isLocked()).toBe(true);
    expect(() => runSync(fx.mm.mmapWriteLock())).toThrow(); // runSync cannot sleep: the read lock is held
    runSync(fx.mm.mmapReadUnlock());
    // One unlock frees it: the lock was taken once (the trylock, not the trylock and then the sleeping lock).
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    // No VMA at or above the address: null, with the lock released.
    expect(runSync(lockMmAndFindVma(fx.env, fx.mm, A + 0x10_0000))).toBeNull();
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    // A VMA above but not covering the address (no VM_GROWSDOWN): null, released, the VMA unchanged.
    expect(runSync(lockMmAndFindVma(fx.env, fx.mm, A - 4096))).toBeNull();
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
    expect(fx.mm.findVma(A)?.vmStart).toBe(A);
    runSync(fx.mm.mmapWriteLock());
    runSync(fx.mm.mmapWriteUnlock());
  });

  it('grows a VM_GROWSDOWN stack down to the address, and finds the grown VMA with the lock held', () => {
    const fx = makeFixture();
    const top = 0x7000_0000;
    fx.mmapAnon(top - 4 * 4096, 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
    const vma = runSync(lockMmAndFindVma(fx.env, fx.mm, top - 6 * 4096)) as VmArea;
    expect(fx.mm.mmapLock.isLocked()).toBe(true);
    runSync(fx.mm.mmapReadUnlock());
    expect(vma.vmStart).toBe(top - 6 * 4096);
    expect(fx.env.vmstat.stackExpansions).toBe(1);
  });
});
