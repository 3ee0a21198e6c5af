import { runSync } from '@spf/machine';
import {
  PAGE_NONE,
  PF_USER,
  PF_WRITE,
  pfnPte,
  ptePfn,
  pteDirty,
  pteMkold,
  pteWrite,
  pteYoung,
  swpEntry,
  swpEntryToPte,
} from '@spf/pagetable';
import {
  MAP_PRIVATE,
  MAP_SHARED,
  MM_ANONPAGES,
  PROT_READ,
  PROT_WRITE,
  pteAllocMap,
  pteLockptr,
  VM_ACCESS_FLAGS,
  VM_MAYWRITE,
  type VmArea,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFaultCounters } from './fault-counters.js';
import {
  FAULT_FLAG_DEFAULT,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_MAJOR,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags.js';
import { handleMmFault, mmAccountFault, sanitizeFaultFlags } from './handle-mm-fault.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';

const A = 0x1000_0000;
const GiB = 1024 * 1024 * 1024;
const READ = FAULT_FLAG_DEFAULT | FAULT_FLAG_USER;
const WRITE = READ | FAULT_FLAG_WRITE;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

/** handle_mm_fault() called as do_user_addr_fault does: under mmap_lock for reading. */
function handle(fx: ReturnType<typeof makeFixture>, address: number, flags: number, task = fx.task): number {
  const vma = fx.mm.findVma(address) as VmArea;
  return runSync(
    (function* () {
      yield* fx.mm.mmapReadLock();
      const ret = yield* handleMmFault(fx.env, fx.mm, vma, address, flags, task);
      if ((ret & VM_FAULT_RETRY) === 0) yield* fx.mm.mmapReadUnlock();
      return ret;
    })(),
  );
}

describe('handle_mm_fault', () => {
  it('maps a first touch at the page of the address (not page aligned) and counts a minor fault', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    expect(handle(fx, A + 4096 + 0xc00, WRITE)).toBe(0);
    expect(fx.pte(A)).toBe(0n);
    expect(pteWrite(fx.pte(A + 4096))).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.task).toMatchObject({ minflt: 1, majflt: 0 });
    expect(fx.env.vmstat).toMatchObject({ pgfault: 1, pgmajfault: 0 });
    expect(fx.touch(A + 4096 + 0xc00, 'r')).toMatchObject({ ok: true, faults: 0 });
    // A none PTE in a table that exists now (ORIG_PTE_VALID, orig_pte none): also do_anonymous_page.
    expect(handle(fx, A, WRITE)).toBe(0);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(2);
  });

  it('dispatches a VMA with vm_ops to do_fault and a write to a write-protected PTE to do_wp_page', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    expect(handle(fx, A, READ)).toBe(0);
    expect(file.faultCalls).toBe(1);
    expect(ptePfn(fx.pte(A))).toBe(file.cachePage(0).pfn);
    expect(handle(fx, A, WRITE)).toBe(0);
    expect(ptePfn(fx.pte(A))).not.toBe(file.cachePage(0).pfn);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1, faults: 0 });
  });

  it('a PTE whose accessed or dirty bit is missing: a write makes it young and dirty in place; a read leaves A to the hardware', () => {
    const fx = makeFixture({ zeroPage: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    handle(fx, A, READ);
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const clean = pteMkold(fx.pte(A)) & ~(1n << 6n); // old and clean, still writable
    fx.pt.writeEntry(ptep, clean);
    expect(pteDirty(clean) || pteYoung(clean)).toBe(false);
    // x86's ptep_set_access_flags() writes only for a write fault: the MMU sets A itself on the retry.
    expect(handle(fx, A, READ)).toBe(0);
    expect(fx.pte(A)).toBe(clean);
    expect(handle(fx, A, WRITE)).toBe(0);
    expect(pteDirty(fx.pte(A))).toBe(true);
    expect(pteYoung(fx.pte(A))).toBe(true);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(ptePfn(fx.pte(A))).toBe(ptePfn(clean));
    expect(fx.env.vmstat.cowCopies + fx.env.vmstat.cowReuses).toBe(0);
    expect(pteLockptr(fx.pt, fx.pt.readEntry(fx.vmfAt(A, 0).pmd)).isLocked()).toBe(false);
  });

  it('a read fault on a present read-only PTE (spurious) changes nothing: no copy-on-write on a read', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    handle(fx, A, READ);
    const zero = fx.pte(A);
    expect(handle(fx, A, READ)).toBe(0);
    expect(fx.pte(A)).toBe(zero);
    expect(fx.env.vmstat.cowCopies).toBe(0);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
  });

  it('a PTE replaced by another CPU before the PTE lock was taken is left alone, not overwritten from the stale copy', () => {
    const fx = makeFixture({ zeroPage: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    handle(fx, A, READ);
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const clean = pteMkold(fx.pte(A)) & ~(1n << 6n);
    fx.pt.writeEntry(ptep, clean);
    const ptl = pteLockptr(fx.pt, fx.pt.readEntry(fx.vmfAt(A, 0).pmd));
    const other = pfnPte(fx.mem.allocPages(0).pfn, (fx.mm.findVma(A) as VmArea).vmPageProt);
    const lock = ptl.lock.bind(ptl);
    ptl.lock = function* () {
      yield* lock();
      fx.pt.writeEntry(ptep, other);
    };
    expect(handle(fx, A, WRITE)).toBe(0);
    ptl.lock = lock;
    expect(fx.pte(A)).toBe(other);
    expect(ptl.isLocked()).toBe(false);
    fx.pt.writeEntry(ptep, clean);
    runSync(fx.mm.pageTables.flushTlbPage(A));
  });

  it('the PTE table vanished between reading the PMD and mapping it: nothing is done, the access is retried', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    runSync(pteAllocMap(fx.env, fx.mm, A));
    const pt = fx.mm.pgd;
    const real = pt.pteOffsetIn.bind(pt);
    pt.pteOffsetIn = () => {
      return null;
    };
    expect(handle(fx, A, WRITE)).toBe(0);
    pt.pteOffsetIn = real;
    expect(fx.pte(A)).toBe(0n);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
  });

  it('a PTE changed by another CPU before the PTE lock was taken: nothing is done, the access is retried', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    handle(fx, A, READ); // the zero page, write-protected
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const ptl = pteLockptr(fx.pt, fx.pt.readEntry(fx.vmfAt(A, 0).pmd));
    const page = fx.mem.allocPages(0);
    const other = pfnPte(page.pfn, (fx.mm.findVma(A) as VmArea).vmPageProt);
    const lock = ptl.lock.bind(ptl);
    ptl.lock = function* () {
      yield* lock();
      fx.pt.writeEntry(ptep, other); // what the other CPU installed while this one waited
    };
    expect(handle(fx, A, WRITE)).toBe(0);
    ptl.lock = lock;
    expect(fx.pte(A)).toBe(other);
    expect(ptl.isLocked()).toBe(false);
    expect(fx.env.vmstat.cowCopies).toBe(0);
    fx.pt.writeEntry(ptep, 0n);
    runSync(fx.mm.pageTables.flushTlbPage(A));
  });

  it('a swap entry or a NUMA-hinting (PROT_NONE) PTE in an accessible VMA is SIGBUS: neither is modelled', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    fx.pt.writeEntry(ptep, swpEntryToPte(swpEntry(1, 5)));
    expect(handle(fx, A, READ)).toBe(VM_FAULT_SIGBUS);
    fx.pt.writeEntry(ptep, 0n);
    const numa = runSync(pteAllocMap(fx.env, fx.mm, A + 4096));
    fx.pt.writeEntry(numa, pfnPte(fx.mem.zeroPfn, PAGE_NONE));
    expect(handle(fx, A + 4096, READ)).toBe(VM_FAULT_SIGBUS);
    fx.pt.writeEntry(numa, 0n);
    expect(fx.env.vmstat.pgfault).toBe(2);
    expect(fx.task.minflt).toBe(0);
  });

  it('a PROT_NONE PTE in a VMA that is not accessible is no NUMA hint (vma_is_accessible): not SIGBUS, left as it is', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const vma = fx.mm.findVma(A) as VmArea;
    const flags = vma.vmFlags;
    vma.vmFlags &= ~VM_ACCESS_FLAGS; // as PROT_NONE leaves it; only a forced fault gets past access_error()
    const none = pfnPte(fx.mem.zeroPfn, PAGE_NONE);
    fx.pt.writeEntry(ptep, none);
    expect(handle(fx, A, READ)).toBe(0);
    expect(fx.pt.readEntry(ptep)).toBe(none);
    fx.pt.writeEntry(ptep, 0n);
    vma.vmFlags = flags;
  });

  it('OOM while allocating a missing page directory or PUD table: VM_FAULT_OOM, counted in pgfault only', () => {
    const fx = makeFixture({ memory: 64 * 4096 });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.mmapAnon(A + GiB, 1, PROT_READ | PROT_WRITE);
    fx.mmapAnon(A + 512 * GiB, 1, PROT_READ | PROT_WRITE);
    expect(handle(fx, A, WRITE)).toBe(0);
    const tables = [fx.pt.tables[1], fx.pt.tables[2], fx.pt.tables[3]];
    while (fx.mem.freeCount > 0) fx.mem.allocPages(0);
    expect(handle(fx, A + GiB, WRITE)).toBe(VM_FAULT_OOM); // needs a page directory
    expect(handle(fx, A + 512 * GiB, WRITE)).toBe(VM_FAULT_OOM); // needs a PUD table
    expect([fx.pt.tables[1], fx.pt.tables[2], fx.pt.tables[3]]).toEqual(tables);
    expect(fx.env.vmstat.pgfault).toBe(3);
    expect(fx.task.minflt).toBe(1);
  });
});

describe('sanitize_fault_flags', () => {
  it('a write to a VMA that can never be written, or to a read-only shared one, is SIGSEGV before any work', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ);
    const file = new TestFile(fx.mem);
    fx.mmapFile(A + 4096, 1, PROT_READ, MAP_SHARED, file.mmapFile());
    const priv = fx.mm.findVma(A) as VmArea;
    const shared = fx.mm.findVma(A + 4096) as VmArea;
    // A forced write (ptrace, FOLL_FORCE) to a private read-only mapping is allowed: it will be a COW.
    expect(sanitizeFaultFlags(priv, WRITE)).toBe(0);
    // A shared mapping that may be made writable but is not now: a write would modify the file.
    expect(shared.vmFlags & VM_MAYWRITE).not.toBe(0);
    expect(sanitizeFaultFlags(shared, WRITE)).toBe(VM_FAULT_SIGSEGV);
    expect(sanitizeFaultFlags(shared, READ)).toBe(0);
    fx.mmapFile(A + 8192, 1, PROT_READ | PROT_WRITE, MAP_SHARED, file.mmapFile());
    expect(sanitizeFaultFlags(fx.mm.findVma(A + 8192) as VmArea, WRITE)).toBe(0); // a writable shared mapping
    priv.vmFlags &= ~VM_MAYWRITE;
    expect(sanitizeFaultFlags(priv, WRITE)).toBe(VM_FAULT_SIGSEGV);
    expect(sanitizeFaultFlags(priv, READ)).toBe(0);
    // Through handle_mm_fault: nothing is walked or allocated, the fault is counted as a failure.
    expect(handle(fx, A, WRITE)).toBe(VM_FAULT_SIGSEGV);
    priv.vmFlags |= VM_MAYWRITE;
    expect(fx.pt.tables[1]).toBe(0);
    expect(file.faultCalls).toBe(0);
    expect(fx.env.vmstat.pgfault).toBe(1);
    expect(fx.task.minflt).toBe(0);
  });

  it('a fault from user mode (PF_USER) with PF_WRITE becomes FAULT_FLAG_WRITE', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ);
    expect(fx.fault(A, PF_USER | PF_WRITE)).toMatchObject({ kind: 'sigsegv', code: 'ACCERR' });
  });
});

describe('mm_account_fault', () => {
  it('counts every finished fault in pgfault; the task minor or major count only when it succeeded', () => {
    const fx = makeFixture();
    const task = new TaskFaultCounters();
    const s = fx.env.vmstat;
    mmAccountFault(fx.env, task, READ, VM_FAULT_RETRY); // counted when the retry completes
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([0, 0, 0, 0]);
    mmAccountFault(fx.env, task, READ, 0);
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([1, 0, 1, 0]);
    mmAccountFault(fx.env, task, READ, VM_FAULT_SIGBUS);
    mmAccountFault(fx.env, task, READ, VM_FAULT_OOM | VM_FAULT_MAJOR);
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([3, 0, 1, 0]);
    mmAccountFault(fx.env, task, READ, VM_FAULT_MAJOR);
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([4, 1, 1, 1]);
    mmAccountFault(fx.env, task, READ | FAULT_FLAG_TRIED, 0); // a retried fault is major
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([5, 2, 1, 2]);
    // A fault with no task (a kernel thread's GUP): only the system counters.
    mmAccountFault(fx.env, null, READ, 0);
    mmAccountFault(fx.env, null, READ, VM_FAULT_MAJOR);
    expect([s.pgfault, s.pgmajfault, task.minflt, task.majflt]).toEqual([7, 3, 1, 2]);
  });
});
