import { expandCalls, type Kernel, runSync } from '@spf/machine';
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
  type LockedPte,
  pteAllocMap,
  pteLockptr,
  pteOffsetMapLock,
  VM_ACCESS_FLAGS,
  VM_MAYWRITE,
  type VmArea,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFaultCounters } from './fault-counters.js';
import {
  FAULT_FLAG_DEFAULT,
  FAULT_FLAG_ORIG_PTE_VALID,
  FAULT_FLAG_SPECULATIVE,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_MAJOR,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags.js';
import { handleMmFault, handlePteFault, mmAccountFault, sanitizeFaultFlags } from './handle-mm-fault.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';
import type { ClassicVmFault, SpeculativeFaultHooks, SpeculativeFileHooks } from './vm-fault.js';

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

describe('handle_pte_fault for a present PTE (classic fault)', () => {
  it('reads the PMD and the PTE once without the lock, then takes pte_lockptr() of that PMD: no second walk', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w', 5)).toMatchObject({ ok: true });
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    fx.pt.writeEntry(ptep, pteMkold(fx.pte(A)) & ~(1n << 6n)); // old and clean
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    const labels: string[] = [];
    const code = expandCalls(handlePteFault(vmf));
    const ret = runSync(
      (function* (): Kernel<number> {
        let r = code.next();
        while (!r.done) {
          const e = r.value as { label?: string };
          if (e.label !== undefined) labels.push(e.label);
          r = code.next(yield r.value);
        }
        return r.value;
      })(),
    );
    expect(ret).toBe(0);
    expect(pteDirty(fx.pte(A)) && pteYoung(fx.pte(A))).toBe(true);
    // pmdp_get and pte_offset_map once each (handle_pte_fault's own reads), and no pte_offset_map_lock() re-walk.
    expect(labels.filter((l) => l === 'pmdp_get')).toHaveLength(1);
    expect(labels.filter((l) => l === 'pte_offset_map')).toHaveLength(1);
  });
});

describe('handle_pte_fault for a speculative fault (FAULT_FLAG_SPECULATIVE)', () => {
  /** A design's pte_map_lock that succeeds (pte_offset_map_lock) or refuses, counting its calls. */
  function hooks(succeed: boolean, file: SpeculativeFileHooks | null = null) {
    const h = {
      calls: 0,
      file,
      *pteMapLock(vmf: ClassicVmFault) {
        h.calls++;
        if (!succeed) return null;
        return (yield* pteOffsetMapLock(vmf.mm.pgd, vmf.pmd, vmf.address)) as LockedPte | null;
      },
    };
    return h;
  }

  /** File hooks that let a speculative file fault go on, recording the section. */
  function fileHooks(): SpeculativeFileHooks & { log: string[] } {
    const log: string[] = [];
    return {
      log,
      *fileAccessBegin() {
        log.push('begin');
        return true;
      },
      *fileAccessEnd() {
        log.push('end');
      },
      checks: { pageMappingRecheck: true },
      aborted(reason) {
        log.push(`aborted ${reason}`);
      },
    };
  }

  /** The fault as the design's page walk hands it over: the PMD and PTE it read (`pte` null for a none PTE). */
  function speculativeVmf(
    fx: ReturnType<typeof makeFixture>,
    flags: number,
    h: SpeculativeFaultHooks,
    seen?: { pte: number | null; origPte: bigint },
  ): ClassicVmFault {
    const base = fx.vmfAt(A, flags | FAULT_FLAG_SPECULATIVE);
    runSync(pteAllocMap(fx.env, fx.mm, A));
    const ptep = runSync(fx.pt.pteOffsetMap(base.pmd, A)) as number;
    const origPte = runSync(fx.pt.ptepGet(ptep));
    return {
      ...base,
      flags: base.flags | FAULT_FLAG_ORIG_PTE_VALID,
      pte: seen ? seen.pte : origPte === 0n ? null : ptep,
      origPte: seen ? seen.origPte : origPte,
      origPmd: runSync(fx.pt.pmdpGet(base.pmd)),
      speculative: h,
    };
  }

  it('takes the PTE lock through the design, sets A/D, and gives up with VM_FAULT_RETRY when the design refuses', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w', 5)).toMatchObject({ ok: true });
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const old = pteMkold(fx.pte(A)) & ~(1n << 6n); // old and clean, still writable
    fx.pt.writeEntry(ptep, old);
    const refuse = hooks(false);
    expect(runSync(handlePteFault(speculativeVmf(fx, FAULT_FLAG_WRITE, refuse)))).toBe(VM_FAULT_RETRY);
    expect(refuse.calls).toBe(1);
    expect(fx.pte(A)).toBe(old);
    const ok = hooks(true);
    expect(runSync(handlePteFault(speculativeVmf(fx, FAULT_FLAG_WRITE, ok)))).toBe(0);
    expect(ok.calls).toBe(1);
    expect([pteYoung(fx.pte(A)), pteDirty(fx.pte(A)), ptePfn(fx.pte(A))]).toEqual([true, true, ptePfn(old)]);
    expect(pteLockptr(fx.pt, fx.pt.readEntry(fx.vmfAt(A, 0).pmd)).isLocked()).toBe(false);
  });

  it('works on the PTE the design read, not on a fresh read: a PTE mapped since is left alone', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    // The walk saw no PTE; meanwhile another fault mapped the zero page (read-only).
    const h = hooks(true);
    const vmf = speculativeVmf(fx, FAULT_FLAG_WRITE, h, { pte: null, origPte: 0n });
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true });
    const zero = fx.pte(A);
    expect(ptePfn(zero)).toBe(fx.mem.zeroPfn);
    const free = fx.mem.freeCount;
    // do_anonymous_page finds the PTE changed under the lock and backs out; the write is retried by the
    // user access, not turned into a copy-on-write of the zero page here.
    expect(runSync(handlePteFault(vmf))).toBe(0);
    expect(fx.pte(A)).toBe(zero);
    expect(fx.mem.freeCount).toBe(free);
  });

  it('a file fault goes on only with the design’s file hooks and a file type that allows it (vm_ops->speculative)', () => {
    for (const [withHooks, speculative, goes] of [
      [false, undefined, false],
      [false, true, false],
      [true, undefined, false],
      [true, false, false],
      [true, true, true],
    ] as const) {
      const fx = makeFixture();
      const file = new TestFile(fx.mem);
      const mf = file.mmapFile();
      // ->map_pages (fault-around) maps nothing here, but it too may only run inside the design's file section.
      let mapPagesCalls = 0;
      const ops = {
        ...mf.ops,
        speculative,
        *mapPages(): Kernel<number> {
          mapPagesCalls++;
          return 0;
        },
      };
      fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, { ...mf, ops });
      const fh = fileHooks();
      const h = hooks(true, withHooks ? fh : null);
      const ret = runSync(handlePteFault(speculativeVmf(fx, 0, h)));
      expect({ withHooks, speculative, ret, faultCalls: file.faultCalls, mapPagesCalls }).toEqual({
        withHooks,
        speculative,
        ret: goes ? 0 : VM_FAULT_RETRY,
        faultCalls: goes ? 1 : 0,
        mapPagesCalls: goes ? 1 : 0,
      });
      expect(fh.log).toEqual(goes ? ['begin', 'end', 'begin', 'end'] : []);
      if (goes) expect(ptePfn(fx.pte(A))).toBe(file.cachePage(0).pfn);
      else expect(fx.pte(A)).toBe(0n);
    }
  });
});
