import { faultFlagAllowRetryFirst, releaseFaultLock, VM_FAULT_RETRY } from '@spf/fault-classic';
import { delay } from '@spf/machine';
import { getPage, type Page, putPage } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  type VmFile,
  type VmOperations,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { UserSignal } from './signals.js';
import { boot } from './system.js';

const A = 0x5000_0000;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('syscalls and access kinds from user programs', () => {
  it('an instruction fetch needs PROT_EXEC: fetching from rw memory is SIGSEGV ACCERR after the page is mapped', () => {
    const sys = boot();
    const out: string[] = [];
    sys.spawnProcess('fetch', function* (u) {
      u.catchSignal('SIGSEGV');
      yield* u.mmap(A, 4096, PROT_READ | PROT_WRITE, ANON);
      yield* u.mmap(A + 4096, 4096, PROT_READ | PROT_EXEC, ANON);
      out.push(`x: ${yield* u.fetch8(A + 4096)}`);
      try {
        yield* u.fetch8(A);
      } catch (e) {
        if (!(e instanceof UserSignal)) throw e;
        out.push(`rw: ${e.info.signal} ${e.info.code}`);
      }
      out.push(`present: ${u.pagemap(A)}`);
    });
    expect(sys.run().ok).toBe(true);
    // The first fault on the rw page is a read of a not-present page (allowed: it maps the page); the retried
    // fetch then hits the NX bit with P set, which access_error refuses.
    expect(out).toEqual(['x: 0', 'rw: SIGSEGV ACCERR', 'present: Z']);
  });

  it('mremap moves pages with their contents; brk grows the heap', () => {
    const sys = boot();
    const out: unknown[] = [];
    sys.spawnProcess('mremap', function* (u) {
      yield* u.mmap(A, 2 * 4096, PROT_READ | PROT_WRITE, ANON);
      yield* u.store8(A + 4096, 0x61);
      const r = yield* u.mremap(A, 2 * 4096, 64 * 4096, MREMAP_MAYMOVE);
      if (!r.ok) throw new Error(`mremap errno ${r.errno}`);
      out.push(yield* u.load8(r.value + 4096), yield* u.load8(r.value + 40 * 4096));
      const bad = yield* u.mremap(A + 1, 4096, 8192, 0);
      out.push(bad.ok ? 'ok' : bad.errno);
      const cur = yield* u.brk(0);
      const next = yield* u.brk(cur + 3 * 4096);
      out.push(next - cur);
      yield* u.store8(cur + 2 * 4096, 9);
      out.push(yield* u.load8(cur + 2 * 4096));
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(out).toEqual([0x61, 0, 22, 3 * 4096, 9]);
  });

  it('boots with the range-lock mmap_lock and runs the same program', () => {
    const sys = boot({ cpus: 2, mmapLock: 'range' });
    let v = -1;
    sys.spawnProcess('range', function* (u) {
      yield* u.mmap(A, 8 * 4096, PROT_READ | PROT_WRITE, ANON);
      yield* u.spawnThread(function* (t) {
        for (let p = 0; p < 4; p++) yield* t.store8(A + p * 4096, p);
      }, 1);
      for (let p = 4; p < 8; p++) yield* u.store8(A + p * 4096, p);
      v = yield* u.load8(A + 7 * 4096);
    });
    expect(sys.run().ok).toBe(true);
    expect(v).toBe(7);
    expect(sys.processes[0].mm.mmapLockKind).toBe('range');
  });

  it('forks under the range-lock mmap_lock: dup_mmap nests the child mm lock, lockdep stays quiet', () => {
    // dup_mmap() write-locks the child's mm while it holds the parent's (mmap_write_lock_nested with
    // SINGLE_DEPTH_NESTING): both locks are of class mm->mmap_lock, so without the subclass lockdep would
    // report possible recursive locking.
    const sys = boot({ cpus: 2, mmapLock: 'range' });
    const out: number[] = [];
    sys.spawnProcess('parent', function* (u) {
      yield* u.mmap(A, 2 * 4096, PROT_READ | PROT_WRITE, ANON);
      yield* u.store8(A, 5);
      const f = yield* u.fork(function* (c) {
        out.push(yield* c.load8(A));
        yield* c.store8(A, 6);
        out.push(yield* c.load8(A));
      }, 1);
      if (!f.ok) throw new Error(`fork errno ${f.errno}`);
      yield* u.wait(f.value);
      out.push(yield* u.load8(A));
    });
    const res = sys.run();
    expect(res.failure?.message).toBeUndefined();
    expect(res.ok).toBe(true);
    expect(out).toEqual([5, 6, 5]);
    expect(sys.processes.map((p) => p.mm.mmapLockKind)).toEqual(['range', 'range']);
  });

  it('a bad syscall argument returns its errno and changes nothing', () => {
    const sys = boot();
    const out: unknown[] = [];
    sys.spawnProcess('bad', function* (u) {
      out.push((yield* u.mmap(A + 1, 4096, PROT_READ, ANON)).ok);
      out.push(yield* u.munmap(A, 0));
      out.push(yield* u.mprotect(A, 4096, PROT_READ));
      out.push(u.maps());
    });
    expect(sys.run().ok).toBe(true);
    expect(out).toEqual([false, { ok: false, errno: 22 }, { ok: false, errno: 12 }, '']);
  });
});

describe('file mappings through vm_ops', () => {
  it('a fault whose ->fault drops mmap_lock and asks for a retry completes on the retry and counts as major', () => {
    const sys = boot();
    const pages = new Map<number, Page>();
    let calls = 0;
    const ops: VmOperations = {
      *fault(vmf) {
        calls++;
        if (faultFlagAllowRetryFirst(vmf.flags)) {
          // Like filemap_fault starting I/O: drop the lock, wait, ask for a retry.
          yield* releaseFaultLock(vmf);
          yield* delay(sys.cost.diskRead, 'disk read');
          return VM_FAULT_RETRY;
        }
        let p = pages.get(vmf.pgoff);
        if (p === undefined) {
          p = sys.mem.allocPages(0);
          sys.mem.write8(p.pa, 0x40 + vmf.pgoff);
          p.set('uptodate');
          pages.set(vmf.pgoff, p);
        }
        yield* getPage(p);
        vmf.page = p;
        return 0;
      },
    };
    const file: VmFile = { path: '/data', devMajor: 8, devMinor: 1, ino: 7 };
    const out: unknown[] = [];
    sys.spawnProcess('file', function* (u) {
      const r = yield* u.mmap(A, 2 * 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, { file, ops }, 4096);
      if (!r.ok) throw new Error(`mmap errno ${r.errno}`);
      out.push(yield* u.load8(A), u.rusage(), yield* u.load8(A + 1), u.rusage());
      yield* u.munmap(A, 2 * 4096);
      for (const p of pages.values()) yield* putPage(p); // drop the "page cache"
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(calls).toBe(2);
    expect(out).toEqual([0x41, { minflt: 0, majflt: 1 }, 0, { minflt: 0, majflt: 1 }]);
    expect(sys.vmstat).toMatchObject({ retries: 1, pgfault: 1, pgmajfault: 1 });
  });
});
