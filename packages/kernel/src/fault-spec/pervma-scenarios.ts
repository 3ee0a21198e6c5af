import { perVmaLock, type PerVmaLockOptions } from '@spf/fault-spec';
import { block, type Kernel, type Scenario, WaitQueue, wake } from '@spf/machine';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { UserSignal } from '../signals.js';
import { boot, type System } from '../system.js';
import type { UserContext } from '../user-context.js';

/**
 * The explored user programs of the per-VMA-lock design (issue 13, item 5): each races faults taken under
 * the VMA lock against one writer, and checks what a user or the kernel's checkers can see. Built for
 * packages/kernel/src/fault-spec/pervma-*.test.ts.
 */

const A = 0x5000_0000; // 2 MiB aligned: the region has a page table of its own
const B = 0x6000_0000;
const C = 0x7000_0000;
const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** A scenario with the per-VMA-lock handler built from `options`. */
export type PervmaScenario = (name: string, options: PerVmaLockOptions) => Scenario;

/** Throws (failing the run with a report) unless `ok`. */
export function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

/** Runs `program` in a thread on `cpu` (SIGSEGV caught) and returns a join that blocks until it has finished. */
export function* thread(
  u: UserContext,
  cpu: number,
  program: (t: UserContext) => Kernel<void>,
): Kernel<() => Kernel<void>> {
  let done = false;
  const q = new WaitQueue('join');
  yield* u.spawnThread(function* (t) {
    t.catchSignal('SIGSEGV');
    try {
      yield* program(t);
    } finally {
      done = true;
      yield* wake(q);
    }
  }, cpu);
  return () => block(q, () => done, 'join');
}

/** A one-shot event between threads of a scenario: `wait()` sleeps until `set()` (no spinning). */
function event(what: string): { set(): Kernel<void>; wait(): Kernel<void> } {
  let on = false;
  const q = new WaitQueue(what);
  return {
    *set() {
      on = true;
      yield* wake(q);
    },
    wait: () => block(q, () => on, what),
  };
}

/** Stores `value` at `addr`; false if the access got SIGSEGV (the handler is installed). */
export function* tryStore(t: UserContext, addr: number, value: number): Kernel<boolean> {
  try {
    yield* t.store8(addr, value);
    return true;
  } catch (e) {
    if (!(e instanceof UserSignal)) throw e;
    return false;
  }
}

function bootWith(m: Parameters<Scenario['setup']>[0], options: PerVmaLockOptions): System {
  return boot({ machine: m, faultHandler: perVmaLock(options), memory: 4 * 1024 * 1024 });
}

/**
 * mprotect(PROT_READ) of a whole 4-page VMA on CPU 0 while a thread on CPU 1 write-faults its pages under
 * the VMA lock. Afterwards no PTE may be writable in the read-only VMA (the mm invariants, checked once both
 * are done, before the process exits).
 */
export const mprotectVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('mprotect', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.store8(A, 1); // the VMA gets its anon_vma (6.4 locks only such VMAs)
      const join = yield* thread(u, 1, function* (t) {
        for (let p = 1; p < 4; p++) yield* tryStore(t, A + p * P, 2);
      });
      const r = yield* u.mprotect(A, 4 * P, PROT_READ);
      check(r.ok, () => 'mprotect failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * mprotect(PROT_READ) of the upper half of a 4-page VMA (a split: the old VMA shrinks, a new read-only one
 * takes the upper half) while a thread write-faults the upper half under the VMA lock.
 */
export const splitVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('split', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.store8(A, 1);
      const join = yield* thread(u, 1, function* (t) {
        for (let p = 2; p < 4; p++) yield* tryStore(t, A + p * P, 2);
      });
      const r = yield* u.mprotect(A + 2 * P, 2 * P, PROT_READ);
      check(r.ok, () => 'mprotect failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * mprotect(PROT_READ) of the upper half of a VMA whose lower half is already read-only: the upper VMA is
 * merged into the lower one and removed from the tree (vma_merge() through vma_prepare()), while a thread
 * write-faults the upper half under the upper VMA's lock. No writable PTE may remain in the read-only VMA.
 */
export const mergeVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('merge', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.store8(A, 1); // anon_vma before the split, so both halves share it and may merge again
      check((yield* u.mprotect(A, 2 * P, PROT_READ)).ok, () => 'mprotect of the lower half failed');
      const join = yield* thread(u, 1, function* (t) {
        for (let p = 2; p < 4; p++) yield* tryStore(t, A + p * P, 2);
      });
      check((yield* u.mprotect(A + 2 * P, 2 * P, PROT_READ)).ok, () => 'mprotect of the upper half failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * mprotect(PROT_READ) of the lower half of a 4-page VMA (a split: the VMA keeps the lower half and becomes
 * read-only, a new VMA takes the upper half, still writable) while a thread stores to page 2, in the upper
 * half, which stays writable throughout: the store must succeed.
 */
export const splitLowerVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('split-lower', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      // The anon_vma comes from a page of the upper half: mprotect then changes no present PTE and sends
      // no shootdown (an IPI would make the writer wait for the faulting CPU).
      yield* u.store8(A + 3 * P, 1);
      const failed: number[] = [];
      const join = yield* thread(u, 1, function* (t) {
        if (!(yield* tryStore(t, A + 2 * P, 2))) failed.push(2);
      });
      check((yield* u.mprotect(A, 2 * P, PROT_READ)).ok, () => 'mprotect failed');
      yield* join();
      check(
        failed.length === 0,
        () => `stores to page(s) ${failed.join(', ')}, writable throughout, got SIGSEGV`,
      );
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * munmap of a whole 4-page VMA while a thread write-faults it under the VMA lock. Afterwards no page may be
 * mapped where no VMA is (checked before exit); a store that succeeded must not have used freed memory
 * (the machine's use-after-free checker).
 */
export const munmapVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('munmap', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.store8(A, 1);
      const join = yield* thread(u, 1, function* (t) {
        for (let p = 1; p < 4; p++) yield* tryStore(t, A + p * P, 2);
      });
      const r = yield* u.munmap(A, 4 * P);
      check(r.ok, () => 'munmap failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * munmap of a 4-page VMA that has an anon_vma but no present page (its page was dropped with
 * MADV_DONTNEED) and shares its page table with a read-only VMA below it, so the unmap sends no shootdown,
 * while a thread write-faults it. Afterwards no page may be mapped where no VMA is.
 */
export const munmapQuietVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('munmap-quiet', function* (u) {
      yield* u.mmap(A, P, PROT_READ, ANON);
      yield* u.mmap(A + P, 4 * P, RW, ANON);
      yield* u.store8(A + P, 1);
      check((yield* u.madvise(A + P, P, MADV_DONTNEED)).ok, () => 'madvise failed');
      const join = yield* thread(u, 1, function* (t) {
        yield* tryStore(t, A + 2 * P, 2);
      });
      check((yield* u.munmap(A + P, 4 * P)).ok, () => 'munmap failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * A fresh 3-page VMA X (no anon_vma yet) right above a 1-page VMA N that differs from it only in its access
 * bits (so the two do not merge, but X may reuse N's anon_vma: `find_mergeable_anon_vma()`). N has an
 * anon_vma and no present page (dropped with MADV_DONTNEED, so unmapping it sends no shootdown). CPU 1
 * write-faults X while CPU 0 unmaps N, which frees N's anon_vma. X must never be linked to a freed
 * anon_vma (mm invariant; in Linux a use-after-free).
 */
export const anonVmaPrepareVsMunmap: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('anon-vma', function* (u) {
      yield* u.mmap(A, P, RW | PROT_EXEC, ANON);
      yield* u.store8(A, 1);
      check((yield* u.madvise(A, P, MADV_DONTNEED)).ok, () => 'madvise failed');
      yield* u.mmap(A + P, 3 * P, RW, ANON);
      const join = yield* thread(u, 1, function* (t) {
        yield* tryStore(t, A + 2 * P, 2);
      });
      check((yield* u.munmap(A, P)).ok, () => 'munmap failed');
      yield* join();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * The user program of the mremap race: mremap moves a 4-page VMA from A to B (MREMAP_FIXED) while a thread on
 * CPU 1 stores a distinct value into each page; a store that completed (no SIGSEGV) must be found at B.
 */
export function* mremapStoresProgram(u: UserContext, sys: System): Kernel<void> {
  u.catchSignal('SIGSEGV');
  yield* u.mmap(A, 4 * P, RW, ANON);
  yield* u.store8(A, 1);
  const stored: boolean[] = [];
  const join = yield* thread(u, 1, function* (t) {
    for (let p = 1; p < 4; p++) stored[p] = yield* tryStore(t, A + p * P, 10 + p);
  });
  const r = yield* u.mremap(A, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, B);
  check(r.ok, () => 'mremap failed');
  yield* join();
  for (let p = 1; p < 4; p++) {
    if (!stored[p]) continue;
    const v = yield* u.load8(B + p * P);
    check(
      v === 10 + p,
      () =>
        `a store of ${10 + p} to page ${p} completed before mremap returned, but the moved page holds ${v}: the write was lost`,
    );
  }
  sys.assertInvariants();
}

/**
 * mremap moves a 4-page VMA from A to B while a thread stores a distinct value into each page. A store that
 * completed (no SIGSEGV) must be found at B afterwards: the data moved with the page tables.
 */
export const mremapVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 2,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('mremap', (u) => mremapStoresProgram(u, sys));
    return () => {};
  },
});

/**
 * fork on CPU 0 while the parent's thread on CPU 1 stores byte after byte into a page whose writable
 * translation its TLB holds (byte 16 + v gets v), and a thread on CPU 2 write-faults byte 8 of the same
 * page: once fork has write-protected the PTE, that is a COW fault, taken under the VMA lock unless fork
 * write-locked the VMA. Afterwards the parent must read back every byte its thread stored. A COW copy made
 * while fork's TLB flush is still pending loses the stores CPU 1 makes through its stale writable
 * translation between the copy and the flush: they land in the page the child keeps (the child sees the
 * parent's post-fork writes, the parent lost them). The 6.4 fork race.
 */
export const forkVsCowFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 3,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('fork', function* (u) {
      yield* u.mmap(A, P, RW, ANON);
      yield* u.store8(A, 1);
      let forked = false;
      let last = 1;
      const storer = yield* thread(u, 1, function* (t) {
        for (let v = 2; v < 200 && !forked; v++) {
          yield* t.store8(A + 16 + v, v);
          last = v;
        }
      });
      const cow = yield* thread(u, 2, function* (t) {
        for (let k = 0; k < 3; k++) yield* t.schedYield();
        yield* t.store8(A + 8, 0x55);
      });
      const pid = yield* u.fork(function* () {}, 0);
      forked = true;
      check(pid.ok, () => 'fork failed');
      yield* storer();
      yield* cow();
      const bytes = yield* u.loadBytes(A, P);
      for (let v = 2; v <= last; v++) {
        check(
          bytes[16 + v] === v,
          () =>
            `the parent's thread stored ${v} at byte ${16 + v} (of ${last} stores), but the parent reads back ${bytes[16 + v]}: the store was lost to the child's copy`,
        );
      }
      check(bytes[8] === 0x55, () => 'the COW fault store was lost');
      if (pid.ok) yield* u.wait(pid.value);
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * Two writers and a faulting thread: CPU 0 mprotects an unrelated VMA (taking and releasing mmap_lock for
 * writing), CPU 1 mprotects the 4-page VMA A to PROT_READ, and CPU 2 write-faults A's pages under the VMA
 * lock. With vma_end_write_all() after up_write(), CPU 1 may take mmap_lock and mark A with the old
 * mm_lock_seq, which CPU 0's late bump then ends while CPU 1 still changes A.
 */
export const twoWritersVsWriteFault: PervmaScenario = (name, options) => ({
  name,
  cpus: 3,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('two-writers', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.mmap(B, P, RW, ANON);
      yield* u.store8(A, 1);
      const writer = yield* thread(u, 1, function* (t) {
        const r = yield* t.mprotect(A, 4 * P, PROT_READ);
        check(r.ok, () => 'mprotect A failed');
      });
      const faulter = yield* thread(u, 2, function* (t) {
        for (let p = 1; p < 4; p++) yield* tryStore(t, A + p * P, 2);
      });
      const r = yield* u.mprotect(B, P, PROT_READ);
      check(r.ok, () => 'mprotect B failed');
      yield* writer();
      yield* faulter();
      sys.assertInvariants();
    });
    return () => {};
  },
});

/**
 * Two writers and a faulting thread: CPU 0 mprotects an unrelated VMA C (taking and releasing mmap_lock for
 * writing); CPU 1, once CPU 0 has entered mprotect, moves the 4-page VMA A to B with mremap; CPU 2, once
 * CPU 0's mprotect has returned, stores a distinct value into each page of A. A store that completed must be
 * found at B afterwards. With vma_end_write_all() after up_write(), CPU 1 may take mmap_lock between CPU 0's
 * up_write() and its late mm_lock_seq bump and write-lock A with the old sequence number; the bump then ends
 * that write lock while CPU 1 is still moving A's page tables, and CPU 2's fault locks A.
 */
export const twoWritersVsMremap: PervmaScenario = (name, options) => ({
  name,
  cpus: 3,
  setup(m) {
    const sys = bootWith(m, options);
    sys.spawnProcess('two-writers', function* (u) {
      u.catchSignal('SIGSEGV');
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.mmap(C, P, RW, ANON);
      yield* u.store8(A, 1);
      const stored: boolean[] = [];
      const entered = event('mprotect entered');
      const returned = event('mprotect returned');
      const writer = yield* thread(u, 1, function* (t) {
        yield* entered.wait();
        const r = yield* t.mremap(A, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, B);
        check(r.ok, () => 'mremap failed');
      });
      const faulter = yield* thread(u, 2, function* (t) {
        yield* returned.wait();
        for (let p = 1; p < 4; p++) stored[p] = yield* tryStore(t, A + p * P, 10 + p);
      });
      yield* entered.set();
      check((yield* u.mprotect(C, P, PROT_READ)).ok, () => 'mprotect failed');
      yield* returned.set();
      yield* writer();
      yield* faulter();
      for (let p = 1; p < 4; p++) {
        if (!stored[p]) continue;
        const v = yield* u.load8(B + p * P);
        check(
          v === 10 + p,
          () =>
            `a store of ${10 + p} to page ${p} completed before mremap returned, but the moved page holds ${v}: the write was lost`,
        );
      }
      sys.assertInvariants();
    });
    return () => {};
  },
});
