import { type Kernel, runSync } from '@spf/machine';
import {
  getPage,
  lockPage,
  OutOfMemoryError,
  type Page,
  ptePfn,
  pteWrite,
  putPage,
  unlockPage,
} from '@spf/pagetable';
import {
  MAP_PRIVATE,
  MAP_SHARED,
  MM_ANONPAGES,
  MM_FILEPAGES,
  PROT_READ,
  PROT_WRITE,
  VM_READ,
  type VmArea,
  type VmFault,
  type VmOperations,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { doFault, doFaultCall, doPageMkwrite, faultOps, finishFault } from './do-fault.js';
import {
  FAULT_FLAG_MKWRITE,
  FAULT_FLAG_WRITE,
  VM_FAULT_DONE_COW,
  VM_FAULT_LOCKED,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
} from './fault-flags.js';
import { shmemVmOps } from './shmem-fault.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';
import type { ClassicVmFault } from './vm-fault.js';

const A = 0x2000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_fault through vm_ops', () => {
  it('do_read_fault maps the page-cache page read-only and counts it as a file page', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 4, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A + 2 * 4096, 'r')).toMatchObject({ ok: true, value: 3, faults: 1 });
    const page = file.pages.get(2);
    expect(ptePfn(fx.pte(A + 2 * 4096))).toBe(page?.pfn);
    expect(pteWrite(fx.pte(A + 2 * 4096))).toBe(false);
    expect(page?.mapcount).toBe(1);
    expect(page?.refcount).toBe(2); // the page cache's and the PTE's
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(1);
    expect(fx.invariantProblems([fx.mm], (p) => (p.mapping === file ? 1 : 0))).toEqual([]);
  });

  it('do_cow_fault gives a private writable mapping an anonymous copy and leaves the file page alone', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A + 1, 'w', 0x77)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1 });
    expect(fx.touch(A + 1, 'r')).toMatchObject({ value: 0x77 });
    const cache = file.pages.get(0);
    expect(ptePfn(fx.pte(A))).not.toBe(cache?.pfn);
    expect(fx.mem.read8((cache?.pa ?? 0) + 1)).toBe(0);
    expect(cache?.refcount).toBe(1);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(0);
  });

  it('a write after a read of a private file page copies it (wp_page_copy from a file page)', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    fx.touch(A, 'r');
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(1);
    expect(fx.touch(A + 3, 'w', 5)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1 });
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(0);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(file.pages.get(0)?.mapcount).toBe(0);
  });

  it('do_shared_fault calls page_mkwrite and maps the page-cache page writable', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, file.mmapFile());
    expect(fx.touch(A + 9, 'w', 0x44)).toMatchObject({ ok: true, faults: 1 });
    expect(file.mkwriteCalls).toBe(1);
    const cache = file.pages.get(0);
    expect(ptePfn(fx.pte(A))).toBe(cache?.pfn);
    expect(fx.mem.read8((cache?.pa ?? 0) + 9)).toBe(0x44);
    expect(cache?.test('dirty')).toBe(true);
  });

  it('a write to a shared page mapped read-only goes through page_mkwrite (wp_page_shared)', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, file.mmapFile());
    // vm_page_prot of a shared writable mapping is writable; write-protect the PTE as writeback would.
    fx.touch(A, 'r');
    const ptep = fx.pt.lookup(A).at(-1)?.entryPa ?? 0;
    fx.pt.writeEntry(ptep, fx.pte(A) & ~2n);
    fx.mmu.flushAll(0);
    expect(fx.touch(A, 'w', 1)).toMatchObject({ ok: true, faults: 1 });
    expect(file.mkwriteCalls).toBe(1);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(ptePfn(fx.pte(A))).toBe(file.pages.get(0)?.pfn);
  });

  it('VM_FAULT_SIGBUS from ->fault is SIGBUS', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    file.size = 1;
    fx.mmapFile(A, 2, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true });
    expect(fx.touch(A + 4096, 'r')).toEqual({ kind: 'sigbus', address: A + 4096 });
    expect(fx.env.vmstat.pgfault).toBe(2);
    expect(fx.task.minflt).toBe(1);
  });

  it('a retried fault: ->fault drops mmap_lock and returns VM_FAULT_RETRY, the retry with FAULT_FLAG_TRIED maps the page and counts one major fault', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    file.retryFirst = true;
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 1, faults: 1 });
    expect(file.faultCalls).toBe(2);
    expect(fx.env.vmstat.retries).toBe(1);
    expect(fx.env.vmstat.pgfault).toBe(1);
    expect(fx.env.vmstat.pgmajfault).toBe(1);
    expect(fx.task).toMatchObject({ minflt: 0, majflt: 1 });
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('a fault that must retry while a signal is pending gives up (fault_signal_pending); the access faults again later', () => {
    let pending = true;
    const fx = makeFixture({ signalPending: () => pending });
    const file = new TestFile(fx.mem);
    file.retryFirst = true;
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A, 'r')).toEqual({ kind: 'signal-pending' });
    expect(file.faultCalls).toBe(1);
    expect(fx.env.vmstat.retries).toBe(0); // not retried with FAULT_FLAG_TRIED
    expect(fx.pte(A)).toBe(0n);
    expect(fx.mm.mmapLock.isLocked()).toBe(false); // ->fault released it; nobody took it again
    // The signal was delivered and the task survived it: the instruction runs again and faults again.
    pending = false;
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 1, faults: 1 });
    // A new fault from the start: ->fault asks for a retry again, and this time it is retried.
    expect(file.faultCalls).toBe(3);
    expect(fx.env.vmstat.retries).toBe(1);
  });

  it('a pending signal does not abandon a fault that completes without retrying', () => {
    const fx = makeFixture({ signalPending: () => true });
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 1, faults: 1 });
  });
});

/** A vm_ops whose ->fault serves `file`'s page-cache pages with the given twist. */
function opsWith(file: TestFile, over: Partial<VmOperations>): VmOperations {
  return { ...file.ops(), ...over };
}

describe('do_fault: the paths a page-cache file rarely takes', () => {
  it('faultOps: a VMA’s own vm_ops, shmem’s for shared anonymous memory, none for private anonymous memory', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const m = file.mmapFile();
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, m);
    fx.mmapAnon(A + 0x10_0000, 1, PROT_READ, MAP_PRIVATE);
    fx.mmapAnon(A + 0x20_0000, 1, PROT_READ, MAP_SHARED);
    const at = (a: number) => fx.mm.findVma(a) as VmArea;
    expect(faultOps(at(A))).toBe(m.ops);
    expect(faultOps(at(A + 0x10_0000))).toBeNull();
    expect(faultOps(at(A + 0x20_0000))).toBe(shmemVmOps);
    // vma_is_anonymous() is "no vm_ops": a private VMA that has a file but no vm_ops is anonymous.
    const shared = at(A + 0x20_0000);
    const privateWithFile = { vmOps: null, vmFile: shared.vmFile, vmFlags: VM_READ } as unknown as VmArea;
    expect(faultOps(privateWithFile)).toBeNull();
  });

  it('a VMA whose vm_ops has no ->fault gets VM_FAULT_SIGBUS from do_fault and __do_fault', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    const [read, write] = [fx.vmfAt(A, 0), fx.vmfAt(A, FAULT_FLAG_WRITE)];
    const pgalloc = fx.env.vmstat.pgalloc;
    const free = fx.mem.freeCount;
    expect(runSync(doFault(read, {}))).toBe(VM_FAULT_SIGBUS);
    // A private write is refused before do_cow_fault() would prepare an anon_vma and allocate the copy.
    expect(runSync(doFault(write, {}))).toBe(VM_FAULT_SIGBUS);
    expect(fx.env.vmstat.pgalloc).toBe(pgalloc);
    expect(fx.mem.freeCount).toBe(free);
    expect(fx.mm.findVma(A)?.anonVma ?? null).toBeNull();
    expect(runSync(doFaultCall(fx.vmfAt(A, 0), {}))).toBe(VM_FAULT_SIGBUS);
  });

  it('a ->fault that returns success without a page is a bug in the vm_ops, reported by name', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    const ops = opsWith(file, {
      *fault(): Kernel<number> {
        return 0;
      },
    });
    expect(() => runSync(doFaultCall(fx.vmfAt(A, 0), ops))).toThrow(
      /vm_ops->fault of .* returned 0 without a page in vmf\.page; return VM_FAULT_NOPAGE or set vmf\.page/,
    );
  });

  it('a ->fault that returns the page locked (VM_FAULT_LOCKED) is not locked again, and the page ends unlocked', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = opsWith(file, {
      *fault(vmf: VmFault): Kernel<number> {
        const page = file.cachePage(vmf.pgoff);
        yield* getPage(page);
        yield* lockPage(page);
        (vmf as ClassicVmFault).page = page;
        return VM_FAULT_LOCKED;
      },
    });
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, { file, ops, readable: true, writable: true });
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 1, faults: 1 });
    expect(file.pages.get(0)?.test('locked')).toBe(false);
    expect(file.pages.get(0)?.refcount).toBe(2);
  });

  it('finish_fault of a private write without a COW page is SIGBUS', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    vmf.page = file.cachePage(0);
    expect(runSync(finishFault(vmf))).toBe(VM_FAULT_SIGBUS);
    expect(fx.pte(A)).toBe(0n);
  });

  it('finish_fault returns VM_FAULT_NOPAGE when the PMD no longer links a PTE table (a huge page took its place)', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    const vmf = fx.vmfAt(A, 0);
    const page = file.cachePage(0);
    vmf.page = page;
    // A present 2 MiB leaf (P, RW, US, PS) at a 2 MiB-aligned frame.
    fx.pt.writeEntry(vmf.pmd, 0x20_0000n | 0x87n);
    expect(runSync(finishFault(vmf))).toBe(VM_FAULT_NOPAGE);
    fx.pt.writeEntry(vmf.pmd, 0n);
    expect(page.mapcount).toBe(0);
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(0);
  });

  it('a read fault that finds the PTE already mapped (a concurrent fault won) maps nothing and drops its page reference', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    fx.touch(A, 'r');
    const page = file.pages.get(0) as Page;
    const before = fx.pte(A);
    expect(runSync(doFault(fx.vmfAt(A, 0), file.ops()))).toBe(VM_FAULT_NOPAGE);
    expect(fx.pte(A)).toBe(before);
    expect([page.refcount, page.mapcount, page.test('locked')]).toEqual([2, 1, false]);
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(1);
  });

  it('a private write fault that finds the PTE already mapped frees its copy and drops the file page', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    fx.touch(A, 'r');
    const page = file.pages.get(0) as Page;
    const before = fx.pte(A);
    const free = fx.mem.freeCount;
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    expect(runSync(doFault(vmf, file.ops()))).toBe(VM_FAULT_NOPAGE);
    expect(vmf.cowPage).toBeNull();
    expect(fx.mem.freeCount).toBe(free);
    expect(fx.pte(A)).toBe(before);
    expect([page.refcount, page.mapcount, page.test('locked')]).toEqual([2, 1, false]);
    expect([fx.mm.rss[MM_FILEPAGES], fx.mm.rss[MM_ANONPAGES]]).toEqual([1, 0]);
  });

  it('a shared write fault that finds the PTE already mapped leaves the page clean, unlocked and unreferenced', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, file.mmapFile());
    fx.touch(A, 'r');
    const page = file.pages.get(0) as Page;
    expect(runSync(doFault(fx.vmfAt(A, FAULT_FLAG_WRITE), file.ops()))).toBe(VM_FAULT_NOPAGE);
    expect([page.refcount, page.mapcount, page.test('locked'), page.test('dirty')]).toEqual([
      2,
      1,
      false,
      false,
    ]);
  });

  it('a private write fault with no memory for the copy is VM_FAULT_OOM before ->fault is called', () => {
    const fx = makeFixture({ memory: 1024 * 1024 });
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    const taken: Page[] = [];
    for (;;) {
      try {
        taken.push(fx.mem.allocPages(0));
      } catch (e) {
        if (e instanceof OutOfMemoryError) break;
        throw e;
      }
    }
    expect(runSync(doFault(vmf, file.ops()))).toBe(VM_FAULT_OOM);
    expect(file.faultCalls).toBe(0);
    for (const p of taken) runSync(putPage(p));
  });

  it('a private or shared write past the end of the file is SIGBUS and leaks no page', () => {
    for (const flags of [MAP_PRIVATE, MAP_SHARED]) {
      const fx = makeFixture();
      const file = new TestFile(fx.mem);
      file.size = 1;
      fx.mmapFile(A, 2, PROT_READ | PROT_WRITE, flags, file.mmapFile());
      expect(fx.touch(A, 'w')).toMatchObject({ ok: true }); // allocates the page tables
      const free = fx.mem.freeCount;
      const mkwrites = file.mkwriteCalls;
      expect(fx.touch(A + 4096, 'w')).toEqual({ kind: 'sigbus', address: A + 4096 });
      expect(fx.mem.freeCount).toBe(free);
      expect(file.mkwriteCalls).toBe(mkwrites);
    }
  });

  it('a ->fault that does the copy itself (VM_FAULT_DONE_COW, as DAX does) is not copied or mapped again', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = opsWith(file, {
      *fault(vmf: VmFault): Kernel<number> {
        const v = vmf as ClassicVmFault;
        const cow = v.cowPage as Page;
        fx.mem.copyFrame(cow.pfn, file.cachePage(vmf.pgoff).pfn);
        fx.mem.write8(cow.pa + 5, 0x99);
        cow.set('uptodate');
        const r = yield* finishFault(v);
        return r | VM_FAULT_DONE_COW;
      },
    });
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, { file, ops, readable: true, writable: true });
    expect(fx.touch(A + 2, 'w', 0x11)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A + 2, 'r')).toMatchObject({ value: 0x11 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1 });
    expect(fx.touch(A + 5, 'r')).toMatchObject({ value: 0x99 });
    expect(fx.env.vmstat.cowCopies).toBe(0);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('do_page_mkwrite: no hook is permission; success returns the page locked (VM_FAULT_LOCKED); an error is passed up; FAULT_FLAG_MKWRITE is set only for the call', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const page = file.cachePage(0);
    fx.mmapAnon(A + 0x10_0000, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    expect(runSync(doPageMkwrite(fx.vmfAt(A + 0x10_0000, FAULT_FLAG_WRITE), page))).toBe(0);
    const noHook = opsWith(file, { pageMkwrite: undefined });
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, {
      file,
      ops: noHook,
      readable: true,
      writable: true,
    });
    expect(runSync(doPageMkwrite(fx.vmfAt(A, FAULT_FLAG_WRITE), page))).toBe(0);
    let seen = 0;
    for (const ret of [0, VM_FAULT_SIGBUS, VM_FAULT_NOPAGE, VM_FAULT_OOM]) {
      const other = new TestFile(fx.mem);
      const at = A + 0x40_0000 + ret * 0x1000;
      const ops = opsWith(other, {
        *pageMkwrite(vmf: VmFault): Kernel<number> {
          seen = vmf.flags;
          return ret;
        },
      });
      fx.mmapFile(at, 1, PROT_READ | PROT_WRITE, MAP_SHARED, {
        file: other,
        ops,
        readable: true,
        writable: true,
      });
      const vmf = fx.vmfAt(at, FAULT_FLAG_WRITE);
      expect(runSync(doPageMkwrite(vmf, page)), `->page_mkwrite returned ${ret}`).toBe(
        ret === 0 ? VM_FAULT_LOCKED : ret,
      );
      expect(page.test('locked')).toBe(ret === 0);
      if (ret === 0) runSync(unlockPage(page));
      expect(seen).toBe(FAULT_FLAG_WRITE | FAULT_FLAG_MKWRITE);
      expect(vmf.flags).toBe(FAULT_FLAG_WRITE);
    }
  });

  it('a shared write fault whose ->page_mkwrite refuses (SIGBUS) maps nothing and drops the page', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = opsWith(file, {
      *pageMkwrite(): Kernel<number> {
        file.mkwriteCalls++;
        return VM_FAULT_SIGBUS;
      },
    });
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, { file, ops, readable: true, writable: true });
    expect(fx.touch(A, 'w')).toEqual({ kind: 'sigbus', address: A });
    expect(file.mkwriteCalls).toBe(1);
    expect(fx.pte(A)).toBe(0n);
    const page = file.pages.get(0) as Page;
    expect([page.refcount, page.mapcount, page.test('locked'), page.test('dirty')]).toEqual([
      1,
      0,
      false,
      false,
    ]);
  });
});
