import { exploreInTest, type Scenario } from '@spf/machine';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { UserSignal } from './signals.js';
import { boot } from './system.js';

const A = 0x4000_0000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('a booted system running user programs', () => {
  it('loads return the bytes stores wrote, and each first touch is one minor fault', () => {
    const sys = boot();
    const seen: number[] = [];
    let rusage = { minflt: -1, majflt: -1 };
    sys.spawnProcess('rw', function* (u) {
      const r = yield* u.mmap(A, 3 * 4096, RW, ANON);
      expect(r).toEqual({ ok: true, value: A });
      seen.push(yield* u.load8(A)); // zero page
      yield* u.store8(A + 4096 + 17, 0xab);
      seen.push(yield* u.load8(A + 4096 + 17));
      yield* u.storeBytes(A + 4096 - 2, new Uint8Array([1, 2, 3, 4]));
      seen.push(...(yield* u.loadBytes(A + 4096 - 2, 4)));
      rusage = u.rusage();
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(seen).toEqual([0, 0xab, 1, 2, 3, 4]);
    // read of page 0 (zero page), write of page 1, write to page 0 (COW of the zero page).
    expect(rusage).toEqual({ minflt: 3, majflt: 0 });
    expect(sys.vmstat.pgfault).toBe(3);
    expect(res.processes[0].status).toEqual({ kind: 'exited', code: 0 });
  });

  it('an unhandled SIGSEGV kills the process and is reported; nothing leaks', () => {
    const sys = boot();
    let after = false;
    sys.spawnProcess('ro', function* (u) {
      yield* u.mmap(A, 4096, PROT_READ, ANON);
      yield* u.store8(A, 1);
      after = true;
    });
    const res = sys.run(); // the end-of-run check includes the leak check
    expect(res.ok).toBe(true);
    expect(after).toBe(false);
    expect(res.processes[0].status).toEqual({
      kind: 'killed',
      signal: { signal: 'SIGSEGV', code: 'ACCERR', address: A },
    });
    expect(res.log).toEqual([`ro[1]: killed by SIGSEGV (ACCERR) at 0x${A.toString(16)}`]);
  });

  it('a caught signal is thrown into the program with its si_code', () => {
    const sys = boot();
    const caught: string[] = [];
    sys.spawnProcess('catch', function* (u) {
      u.catchSignal('SIGSEGV');
      for (const addr of [A, 0x10]) {
        try {
          yield* u.load8(addr);
        } catch (e) {
          if (!(e instanceof UserSignal)) throw e;
          caught.push(`${e.info.signal} ${e.info.code} 0x${e.info.address.toString(16)}`);
        }
      }
      yield* u.exit(3);
    });
    const res = sys.run();
    expect(caught).toEqual([`SIGSEGV MAPERR 0x${A.toString(16)}`, 'SIGSEGV MAPERR 0x10']);
    expect(res.processes[0].status).toEqual({ kind: 'exited', code: 3 });
  });

  it('fork shares pages copy-on-write: each side sees its own writes', () => {
    const sys = boot({ cpus: 2 });
    const out: string[] = [];
    sys.spawnProcess('parent', function* (u) {
      yield* u.mmap(A, 2 * 4096, RW, ANON);
      yield* u.store8(A, 1);
      yield* u.store8(A + 4096, 2);
      const pid = yield* u.fork(function* (c) {
        const before = c.rusage().minflt;
        out.push(`child reads ${yield* c.load8(A)} ${yield* c.load8(A + 4096)}`);
        yield* c.store8(A, 10);
        out.push(`child sees ${yield* c.load8(A)}, faults ${c.rusage().minflt - before}`);
      }, 1);
      if (!pid.ok) throw new Error(`fork: errno ${pid.errno}`);
      const st = yield* u.wait(pid.value);
      out.push(`child ${st.ok ? st.value.kind : `errno ${st.errno}`}`);
      out.push(`parent sees ${yield* u.load8(A)} ${yield* u.load8(A + 4096)}`);
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(out).toEqual(['child reads 1 2', 'child sees 10, faults 1', 'child exited', 'parent sees 1 2']);
    expect(sys.vmstat.cowCopies).toBe(1);
  });

  it('a stack mapping grows down on a fault below it', () => {
    const sys = boot();
    let value = -1;
    sys.spawnProcess('stack', function* (u) {
      yield* u.mmap(A, 4 * 4096, RW, ANON | MAP_GROWSDOWN);
      yield* u.store8(A - 2 * 4096, 7);
      value = yield* u.load8(A - 2 * 4096);
      expect(u.maps()).toContain(`${(A - 2 * 4096).toString(16)}-${(A + 4 * 4096).toString(16)} rw-p`);
    });
    expect(sys.run().ok).toBe(true);
    expect(value).toBe(7);
    expect(sys.vmstat.stackExpansions).toBe(1);
  });

  it('shared anonymous memory is shared with a fork child', () => {
    const sys = boot({ cpus: 2 });
    let seen = -1;
    sys.spawnProcess('shm', function* (u) {
      yield* u.mmap(A, 4096, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
      yield* u.store8(A, 5);
      const pid = yield* u.fork(function* (c) {
        yield* c.store8(A, 6);
      }, 1);
      if (!pid.ok) throw new Error(`fork: errno ${pid.errno}`);
      yield* u.wait(pid.value);
      seen = yield* u.load8(A);
      expect(u.pagemap(A)).toBe('F');
    });
    expect(sys.run().ok).toBe(true);
    expect(seen).toBe(6);
  });

  it('threads of one process fault concurrently with munmap and keep the mm consistent (explored)', () => {
    const name =
      'threads of one process fault concurrently with munmap and keep the mm consistent (explored)';
    const scenario: Scenario = {
      name,
      cpus: 3,
      setup(m) {
        const sys = boot({ machine: m });
        sys.spawnProcess('mt', function* (u) {
          yield* u.mmap(A, 16 * 4096, RW, ANON);
          const worker = (k: number) =>
            function* (w: typeof u) {
              for (let p = 0; p < 16; p++) yield* w.store8(A + p * 4096 + k, k + 1);
            };
          yield* u.spawnThread(worker(1), 1);
          yield* u.spawnThread(worker(2), 2);
          yield* u.munmap(A + 8 * 4096, 4 * 4096);
          yield* worker(0)(u);
        });
        // A thread touching the unmapped hole kills the whole process (SIGSEGV); either way the run must end
        // with the mm invariants intact and every frame freed (the system checks both at the end of a run).
        return () => expect(sys.processes[0].status).not.toBeNull();
      },
    };
    const res = exploreInTest(scenario, { policy: 'pct', runs: 60, seed: 11, depth: 3 }, name);
    expect(res.failure).toBeNull();
  });

  it('madvise(MADV_DONTNEED) drops pages: the next read is a new zero page', () => {
    const sys = boot({ zeroPage: false });
    const values: number[] = [];
    sys.spawnProcess('madv', function* (u) {
      yield* u.mmap(A, 4096, RW, ANON);
      yield* u.store8(A, 9);
      const r = yield* u.madvise(A, 4096, 4);
      expect(r.ok).toBe(true);
      values.push(yield* u.load8(A));
    });
    expect(sys.run().ok).toBe(true);
    expect(values).toEqual([0]);
  });
});

describe('copy-on-write in a multi-threaded process', () => {
  it('breaking COW shoots down the other CPUs’ TLB entries: no thread keeps writing to the shared page', () => {
    const name =
      'breaking COW shoots down the other CPUs’ TLB entries: no thread keeps writing to the shared page';
    const scenario: Scenario = {
      name,
      cpus: 3,
      setup(m) {
        const sys = boot({ machine: m });
        const seen: number[] = [];
        sys.spawnProcess('mtcow', function* (u) {
          yield* u.mmap(A, 2 * 4096, RW, ANON);
          yield* u.store8(A, 1);
          yield* u.store8(A + 4096, 1);
          // A second thread on CPU 1 caches the translation of page 0 in its TLB.
          let stop = false;
          yield* u.spawnThread(function* (t) {
            while (!stop) {
              yield* t.load8(A);
              yield* t.schedYield();
            }
            yield* t.store8(A + 1, 0x22); // after the COW: must land in the parent's new copy
          }, 1);
          const pid = yield* u.fork(function* (c) {
            seen.push(yield* c.load8(A + 1));
          }, 2);
          yield* u.store8(A, 0x11); // COW break: copy, clear the PTE, flush every CPU, map the copy
          stop = true;
          if (!pid.ok) throw new Error(`fork: errno ${pid.errno}`);
          yield* u.wait(pid.value);
        });
        return () => {
          // The child saw the pre-fork contents whatever the interleaving.
          expect(seen).toEqual([0]);
          expect(sys.vmstat.cowCopies + sys.vmstat.cowReuses).toBeGreaterThanOrEqual(1);
        };
      },
    };
    const res = exploreInTest(scenario, { policy: 'random', runs: 40, seed: 5 }, name);
    expect(res.failure).toBeNull();
  });
});
