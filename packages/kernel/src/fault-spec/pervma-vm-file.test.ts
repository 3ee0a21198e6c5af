import { perVmaLock, type PerVmaLockOptions } from '@spf/fault-spec';
import {
  block,
  ExplorationFailure,
  type ExploreOptions,
  exploreInTest,
  type Kernel,
  type Scenario,
  WaitQueue,
  wake,
} from '@spf/machine';
import {
  errnoName,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  type VmFileRelease,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { O_CREAT, O_RDWR, O_TRUNC } from '../file-syscalls.js';
import { UserSignal } from '../signals.js';
import { boot } from '../system.js';

/**
 * Issue 14 item 4: with per-VMA locks and Linux 6.7's file VMAs (`fileVmas: true`), munmap races read
 * faults of a file whose only reference is the VMA's. Whatever `vmFileRelease` says, no fault may touch the
 * file after its last fput released it (the file's use-after-free report is the checker). A broken variant,
 * munmap that does not wait for the VMA-lock readers (its `vma_start_write()` calls in munmap and
 * free_pgtables removed), drops the file while a fault still uses it, and the explorer must catch it.
 */

const P = 4096;
/** A read-only anonymous neighbour in the same page table, so munmap of the file frees no page table. */
const N = 0x5000_0000;
const A = N + 16 * P;

/** PCT, depth 3, at most this many schedules per exploration. */
const BUDGET: ExploreOptions = { policy: 'pct', seed: 1, depth: 3, runs: 300 };

function munmapVsFileFault(name: string, vmFileRelease: VmFileRelease, options: PerVmaLockOptions): Scenario {
  return {
    name,
    cpus: 2,
    setup(m) {
      const sys = boot({
        machine: m,
        faultHandler: perVmaLock({ fileVmas: true, ...options }),
        memory: 4 * 1024 * 1024,
        vmFileRelease,
      });
      sys.spawnProcess('munmap', function* (u) {
        yield* u.mmap(N, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        const fd = yield* u.open('f', O_RDWR | O_CREAT | O_TRUNC);
        if (!fd.ok) throw new Error(`open: ${errnoName(fd.errno)}`);
        yield* u.pwrite(fd.value, 0, new Uint8Array(4 * P).fill(7));
        const r = yield* u.mmap(A, 4 * P, PROT_READ, MAP_SHARED | MAP_FIXED, fd.value, 0);
        if (!r.ok) throw new Error(`mmap: ${errnoName(r.errno)}`);
        yield* u.close(fd.value);
        let done = false;
        const q = new WaitQueue('join');
        yield* u.spawnThread(function* (t): Kernel<void> {
          t.catchSignal('SIGSEGV');
          try {
            for (let p = 0; p < 4; p++) {
              try {
                const v = yield* t.load8(A + p * P);
                if (v !== 7) throw new Error(`page ${p} read ${v}, the file holds 7`);
              } catch (e) {
                if (!(e instanceof UserSignal)) throw e;
              }
            }
          } finally {
            done = true;
            yield* wake(q);
          }
        }, 1);
        const un = yield* u.munmap(A, 4 * P);
        if (!un.ok) throw new Error('munmap failed');
        yield* block(q, () => done, 'join');
        yield* sys.rcu.synchronize();
        const um = yield* u.umount();
        if (!um.ok) throw new Error(`umount after the faults and a grace period: ${errnoName(um.errno)}`);
      });
      return () => {};
    },
  };
}

describe('per-VMA locks, fileVmas: munmap vs file faults never touch a released file (pct, depth 3, ≤300 schedules)', () => {
  for (const mode of ['removeVma', 'freeVma', 'rcu'] as const) {
    it(`vmFileRelease ${mode}: explores clean`, () => {
      const name = `pervma fileVmas, vmFileRelease ${mode}: munmap vs file faults`;
      exploreInTest(munmapVsFileFault(name, mode, {}), BUDGET, name);
    });
  }

  it('broken: munmap that does not wait for VMA-lock readers frees the file under a fault, and is caught', () => {
    const name = 'pervma fileVmas without vma_start_write in munmap: munmap vs file faults';
    const broken: PerVmaLockOptions = {
      checks: { 'vmaStartWrite.munmap': false, 'vmaStartWrite.freePgtables': false },
    };
    let message = '';
    try {
      exploreInTest(munmapVsFileFault(name, 'removeVma', broken), BUDGET, name);
    } catch (e) {
      if (!(e instanceof ExplorationFailure)) throw e;
      message = e.message;
    }
    expect(message, `no failure within ${BUDGET.runs} schedules`).not.toBe('');
    expect(message).toMatch(/use-after-free: .* of file .* after its last fput released it/i);
    expect(message).toMatch(/SPF_REPLAY=/);
  });
});
