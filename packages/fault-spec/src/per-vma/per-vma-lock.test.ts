import {
  type ClassicVmFault,
  type FaultOutcome,
  faultFlagAllowRetryFirst,
  makeFaultEnv,
  releaseFaultLock,
  TaskFaultCounters,
  VM_FAULT_MAJOR,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { defaultCostModel, runSync } from '@spf/machine';
import { getPage, Mmu, PF_USER, PF_WRITE, type Page, PhysicalMemory } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MmStruct,
  mmapSync,
  mprotectSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
  type VmFault,
  type VmFile,
  vmaStartWrite,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';
import { PER_VMA_LOCK_CHECKS } from './per-vma-checks.js';
import { type PerVmaLockHandler, type PerVmaLockOptions, perVmaLock } from './per-vma-lock.js';

const A = 0x1000_0000;
const PAGE = 4096;

/** One mm with an anonymous private 8-page VMA at A, and the per-VMA-lock handler. */
function world(options: PerVmaLockOptions = {}) {
  const mem = new PhysicalMemory({ size: 4 * 1024 * 1024 });
  const env = makeFaultEnv({ mem, cost: defaultCostModel });
  const handler = perVmaLock(options)(env) as PerVmaLockHandler;
  const mmu = new Mmu(mem, { cpus: 1 });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env, mmu }), ...handler.mmConfig });
  const r = mmapSync(mm, {
    addr: A,
    len: 8 * PAGE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  expect(r.ok).toBe(true);
  const task = new TaskFaultCounters();
  const fault = (address: number, write: boolean): FaultOutcome =>
    runSync(handler.handleUserFault({ mm, address, errorCode: PF_USER | (write ? PF_WRITE : 0), task }));
  return { mem, env, handler, mm, task, fault };
}

describe('perVmaLock: the fault side (lock_vma_under_rcu)', () => {
  it('a VMA without an anon_vma aborts to mmap_lock (6.4 limit); once it has one, faults finish under the VMA lock', () => {
    const w = world();
    expect(w.fault(A, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toEqual({
      VMA_LOCK_SUCCESS: 0,
      VMA_LOCK_ABORT: 1,
      VMA_LOCK_RETRY: 0,
      VMA_LOCK_MISS: 0,
    });
    expect(w.mm.vmaLookup(A)?.anonVma).not.toBeNull();
    expect(w.fault(A + PAGE, true)).toEqual({ kind: 'handled' });
    expect(w.fault(A + 2 * PAGE, false)).toEqual({ kind: 'handled' });
    expect(w.handler.counters.VMA_LOCK_SUCCESS).toBe(2);
    expect(w.handler.speculativeStats()).toEqual({
      attempts: 3,
      handled: 2,
      aborts: { VMA_LOCK_ABORT: 1, VMA_LOCK_RETRY: 0 },
    });
    // Every fault is accounted once, whichever path finished it.
    expect(w.task.minflt).toBe(3);
    expect(w.env.vmstat.pgfault).toBe(3);
  });

  it('finishes a fault while another task holds mmap_lock for writing (it never takes mmap_lock)', () => {
    const w = world();
    w.fault(A, true); // gives the VMA its anon_vma
    // A writer that holds mmap_lock but has not write-locked this VMA (it changes some other VMA).
    runSync(w.mm.mmapLock.downWrite());
    expect(w.fault(A + PAGE, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters.VMA_LOCK_SUCCESS).toBe(1);
    runSync(w.mm.mmapLock.upWrite());
  });

  it('a VMA write-locked by vma_start_write() in the current mmap write section is not taken; mmap_write_unlock() releases it', () => {
    const w = world();
    w.fault(A, true);
    runSync(w.mm.mmapWriteLock());
    const vma = w.mm.vmaLookup(A);
    expect(vma).not.toBeNull();
    runSync(vmaStartWrite(vma as NonNullable<typeof vma>));
    runSync(w.mm.mmapWriteUnlock());
    // The section is over: the mark no longer counts.
    expect(w.fault(A + PAGE, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_SUCCESS: 1, VMA_LOCK_ABORT: 1 });
  });

  it('a write to a read-only VMA is SIGSEGV ACCERR decided under the VMA lock', () => {
    const w = world();
    w.fault(A, true);
    expect(mprotectSync(w.mm, A, 8 * PAGE, PROT_READ).ok).toBe(true);
    expect(w.fault(A + PAGE, true)).toEqual({ kind: 'sigsegv', code: 'ACCERR', address: A + PAGE });
    expect(w.handler.counters.VMA_LOCK_SUCCESS).toBe(1);
    // The VMA lock was released: a writer can lock the VMA again.
    const vma = w.mm.vmaLookup(A);
    expect(vma?.vmLock.isLocked()).toBe(false);
  });

  it('an address in a gap aborts to the classic path, which sends SIGSEGV MAPERR', () => {
    const w = world();
    expect(w.fault(A + 8 * PAGE, false)).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: A + 8 * PAGE });
    expect(w.handler.counters.VMA_LOCK_ABORT).toBe(1);
  });

  it('the handler is named pervma and carries its writer-side switches to the mm', () => {
    const w = world({ checks: { 'vmaStartWrite.mprotect': false, vmaEndWriteAllBeforeUnlock: false } });
    expect(w.handler.name).toBe('pervma');
    expect(w.mm.vmaLocking.startWrite.mprotect).toBe(false);
    expect(w.mm.vmaLocking.startWrite.munmap).toBe(true);
    expect(w.mm.vmaLocking.endWriteAll).toBe('after-unlock');
    expect(world({ dupMmapStartWrite: false }).mm.vmaLocking.startWrite.dupMmap).toBe(false);
    expect(world().mm.vmaLocking.startWrite.dupMmap).toBe(true);
  });

  it('lists every check with a description', () => {
    for (const [name, what] of Object.entries(PER_VMA_LOCK_CHECKS)) {
      expect(name).toMatch(/^[a-zA-Z]+(\.[a-zA-Z]+)?$/);
      expect(what.length).toBeGreaterThan(20);
    }
    expect(Object.keys(PER_VMA_LOCK_CHECKS)).toEqual(
      expect.arrayContaining([
        'vmLockSeqRecheck',
        'detachedCheck',
        'rangeCheck',
        'vmaStartWrite.vmaPrepare',
        'vmaStartWrite.munmap',
        'vmaStartWrite.dupMmap',
        'vmaEndWriteAllBeforeUnlock',
      ]),
    );
  });
});

describe('perVmaLock: VM_FAULT_RETRY under the VMA lock', () => {
  /** A file whose `->fault` drops the fault's lock and asks for a retry the first time (as if for I/O). */
  function retryingFile(mem: PhysicalMemory, major: boolean) {
    const file: VmFile = { path: '/retry', devMajor: 8, devMinor: 1, ino: 7 };
    const pages = new Map<number, Page>();
    const calls: { flags: number; vmaLock: boolean }[] = [];
    const ops = {
      *fault(vmf: VmFault) {
        calls.push({ flags: vmf.flags, vmaLock: vmf.vma.vmLock.isLocked() });
        if (faultFlagAllowRetryFirst(vmf.flags)) {
          yield* releaseFaultLock(vmf);
          return VM_FAULT_RETRY | (major ? VM_FAULT_MAJOR : 0);
        }
        let page = pages.get(vmf.pgoff);
        if (page === undefined) {
          page = mem.allocPages(0);
          page.mapping = file;
          page.index = vmf.pgoff;
          page.set('uptodate');
          pages.set(vmf.pgoff, page);
        }
        yield* getPage(page);
        (vmf as ClassicVmFault).page = page;
        return 0;
      },
    };
    return { file, ops, calls };
  }

  for (const major of [false, true]) {
    it(`drops the VMA lock once, counts VMA_LOCK_RETRY and redoes the fault under mmap_lock${major ? ' with FAULT_FLAG_TRIED after a major fault' : ''}`, () => {
      // 6.4 keeps file VMAs off the VMA lock; without that limit a ->fault can return RETRY under it.
      const w = world({ checks: { anonVmaCheck: false } });
      const f = retryingFile(w.mem, major);
      const F = 0x2000_0000;
      const r = mmapSync(w.mm, {
        addr: F,
        len: PAGE,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE,
        file: { file: f.file, ops: f.ops, readable: true, writable: false },
      });
      expect(r.ok).toBe(true);
      expect(w.fault(F, false)).toEqual({ kind: 'handled' });
      expect(w.handler.counters).toMatchObject({ VMA_LOCK_RETRY: 1, VMA_LOCK_SUCCESS: 0 });
      // First call under the VMA lock; the redo under mmap_lock (TRIED after a major fault: it must finish).
      expect(f.calls[0].vmaLock).toBe(true);
      expect(f.calls.length).toBe(major ? 2 : 3);
      expect(w.mm.vmaLookup(F)?.vmLock.isLocked()).toBe(false);
      expect(w.mm.mmapLock.isLocked()).toBe(false);
      expect(w.env.vmstat.pgfault).toBe(1);
    });
  }
});

describe('perVmaLock({ fileVmas: true }): file VMAs under the VMA lock (Linux 6.7)', () => {
  /** A file whose `->fault` returns a cached page (no I/O), recording whether the VMA lock was held. */
  function cachedFile(mem: PhysicalMemory) {
    const file: VmFile = { path: '/cached', devMajor: 8, devMinor: 1, ino: 9 };
    const pages = new Map<number, Page>();
    const calls: boolean[] = [];
    const ops = {
      *fault(vmf: VmFault) {
        calls.push(vmf.vma.vmLock.isLocked());
        let page = pages.get(vmf.pgoff);
        if (page === undefined) {
          page = mem.allocPages(0);
          page.mapping = file;
          page.index = vmf.pgoff;
          page.set('uptodate');
          pages.set(vmf.pgoff, page);
        }
        yield* getPage(page);
        (vmf as ClassicVmFault).page = page;
        return 0;
      },
    };
    return { file, ops, calls };
  }
  const F = 0x2000_0000;
  function mapFile(w: ReturnType<typeof world>, prot: number) {
    const f = cachedFile(w.mem);
    const r = mmapSync(w.mm, {
      addr: F,
      len: 2 * PAGE,
      prot,
      flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE,
      file: { file: f.file, ops: f.ops, readable: true, writable: false },
    });
    expect(r.ok).toBe(true);
    return f;
  }

  for (const fileVmas of [false, true]) {
    it(`a read fault of a file VMA ${fileVmas ? 'finishes under the VMA lock' : 'aborts to mmap_lock (6.4)'}`, () => {
      const w = world({ fileVmas });
      const f = mapFile(w, PROT_READ);
      expect(w.fault(F, false)).toEqual({ kind: 'handled' });
      expect(w.handler.counters).toMatchObject(
        fileVmas ? { VMA_LOCK_SUCCESS: 1, VMA_LOCK_ABORT: 0 } : { VMA_LOCK_SUCCESS: 0, VMA_LOCK_ABORT: 1 },
      );
      expect(f.calls).toEqual([fileVmas]);
      expect(w.mm.mmapLock.isLocked()).toBe(false);
    });
  }

  // Linux 6.10's vmf_anon_prepare() (the default): mmap_read_trylock() succeeds, the anon_vma is prepared
  // under it and the fault finishes under the VMA lock. This test asserted the retry before the option
  // existed; the retry is now Linux 6.7-6.9's behaviour, kept below with vmfAnonPrepareTrylock: false.
  it('a private write without an anon_vma prepares it under mmap_read_trylock() and finishes under the VMA lock (6.10)', () => {
    const w = world({ fileVmas: true });
    mapFile(w, PROT_READ | PROT_WRITE);
    expect(w.mm.vmaLookup(F)?.anonVma).toBeNull();
    expect(w.fault(F, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_RETRY: 0, VMA_LOCK_SUCCESS: 1 });
    expect(w.mm.vmaLookup(F)?.anonVma).not.toBeNull();
    expect([w.task.minflt, w.task.majflt]).toEqual([1, 0]);
    expect(w.mm.vmaLookup(F)?.vmLock.isLocked()).toBe(false);
    expect(w.mm.mmapLock.isLocked()).toBe(false);
  });

  it('with vmfAnonPrepareTrylock: false (6.7 to 6.9) a private write without an anon_vma retries under mmap_lock, the next one does not', () => {
    const w = world({ fileVmas: true, vmfAnonPrepareTrylock: false });
    mapFile(w, PROT_READ | PROT_WRITE);
    expect(w.mm.vmaLookup(F)?.anonVma).toBeNull();
    expect(w.fault(F, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_RETRY: 1, VMA_LOCK_SUCCESS: 0 });
    expect(w.mm.vmaLookup(F)?.anonVma).not.toBeNull();
    expect(w.fault(F + PAGE, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_RETRY: 1, VMA_LOCK_SUCCESS: 1 });
    expect([w.task.minflt, w.task.majflt]).toEqual([2, 0]);
    expect(w.mm.vmaLookup(F)?.vmLock.isLocked()).toBe(false);
    expect(w.mm.mmapLock.isLocked()).toBe(false);
  });

  it('an anonymous VMA without an anon_vma still aborts to mmap_lock', () => {
    const w = world({ fileVmas: true });
    expect(w.fault(A, true)).toEqual({ kind: 'handled' });
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_ABORT: 1, VMA_LOCK_SUCCESS: 0 });
  });

  it('fileVmas must be a boolean', () => {
    expect(() => perVmaLock({ fileVmas: 'yes' } as unknown as PerVmaLockOptions)).toThrow(
      FaultSpecConfigError,
    );
  });

  it('vmfAnonPrepareTrylock must be a boolean', () => {
    expect(() => perVmaLock({ vmfAnonPrepareTrylock: 1 } as unknown as PerVmaLockOptions)).toThrow(
      /vmfAnonPrepareTrylock.*must be true or false/,
    );
  });
});

describe('perVmaLock: bad options are refused when the factory is called', () => {
  const refused = (options: unknown, ...fragments: string[]) => {
    let err: unknown;
    try {
      perVmaLock(options as PerVmaLockOptions);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FaultSpecConfigError);
    for (const f of fragments) expect((err as Error).message).toContain(f);
  };
  it('an unknown check or option, naming the valid ones', () => {
    refused(
      { checks: { vmSequenceRecheck: false } },
      'checks.vmSequenceRecheck',
      'no such check',
      'detachedCheck',
    );
    refused({ checks: { 'vmaStartWrite.mmap': false } }, 'vmaStartWrite.mmap', 'vmaStartWrite.newVma');
    refused({ singleThreadShortcut: true }, 'singleThreadShortcut', 'no such option', 'dupMmapStartWrite');
  });
  it('a switch that is not a boolean', () => {
    refused({ checks: { rangeCheck: 0 } }, 'checks.rangeCheck', 'true or false');
    refused({ dupMmapStartWrite: 'no' }, 'dupMmapStartWrite', 'true or false');
  });
  it('dupMmapStartWrite contradicting checks["vmaStartWrite.dupMmap"]', () => {
    refused(
      { dupMmapStartWrite: false, checks: { 'vmaStartWrite.dupMmap': true } },
      'dupMmapStartWrite: false',
      "checks['vmaStartWrite.dupMmap']: true",
      'disagree',
    );
    expect(() =>
      perVmaLock({ dupMmapStartWrite: false, checks: { 'vmaStartWrite.dupMmap': false } }),
    ).not.toThrow();
  });
});

describe('perVmaLock({ paths }): the injection point of Lab 5', () => {
  it('runs a replacement lock_vma_under_rcu() and hands the writer paths to every mm', () => {
    const seen: number[] = [];
    const writer: string[] = [];
    const w = world({
      paths: {
        *lockVmaUnderRcu(ctx, mm, address) {
          seen.push(address);
          ctx.counters.VMA_LOCK_ABORT++; // a replacement that always falls back
          yield* mm.rcu.readLock();
          yield* mm.rcu.readUnlock();
          return null;
        },
        *vmaStartWrite(vma, site) {
          writer.push(site ?? '-');
          yield* vma.vmLockSeq.store(vma.vmMm.mmLockSeq.value);
        },
      },
    });
    expect(w.fault(A, true)).toEqual({ kind: 'handled' });
    expect(w.fault(A + PAGE, true)).toEqual({ kind: 'handled' });
    expect(seen).toEqual([A, A + PAGE]);
    expect(w.handler.counters).toMatchObject({ VMA_LOCK_ABORT: 2, VMA_LOCK_SUCCESS: 0 });
    expect(w.mm.vmaLocking.paths?.vmaStartWrite).toBeTypeOf('function');
    expect(w.mm.vmaLocking.paths?.vmaEndWriteAll).toBeUndefined();
    expect(mprotectSync(w.mm, A, 8 * PAGE, PROT_READ).ok).toBe(true);
    expect(writer).toContain('mprotect');
  });

  it('without paths the mm keeps the package writer (no replacement)', () => {
    expect(world().mm.vmaLocking.paths).toBeNull();
  });

  it('refuses paths that are unknown or not functions', () => {
    expect(() => perVmaLock({ paths: { vmaStartRead() {} } as never })).toThrow(FaultSpecConfigError);
    expect(() => perVmaLock({ paths: { vmaStartRead() {} } as never })).toThrow(/lockVmaUnderRcu/);
    expect(() => perVmaLock({ paths: { lockVmaUnderRcu: 1 } as never })).toThrow(/generator function/);
    expect(() => perVmaLock({ paths: 5 as never })).toThrow(/must be an object/);
  });
});
