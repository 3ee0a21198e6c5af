import { ptePfn, pteWrite } from '@spf/pagetable';
import { MAP_PRIVATE, MAP_SHARED, MM_ANONPAGES, MM_FILEPAGES, PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';

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
