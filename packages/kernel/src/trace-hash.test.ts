import {
  AtomicCell,
  Cell,
  delay,
  type Kernel,
  kassert,
  type Policy,
  policyFingerprints,
  runFingerprint,
  runScenario,
  type Scenario,
} from '@spf/machine';
import { Mutex, RangeLock, Rcu, RcuBox, RwSemaphore, SpinLock } from '@spf/locks';
import { describe, expect, it } from 'vitest';
import { runCowFork } from './scenarios/cow-fork.js';
import { runScaling } from './scenarios/scaling.js';
import { itClassicOnly } from './test-support/classic-only.js';
import { matrixHandlerName } from './test-support/handler-matrix.js';

/** Why the kernel fingerprints below hold for the classic handler only (see the kernel's test matrix). */
const CLASSIC_TRACE =
  'the recorded fingerprint is the classic fault path’s exact sequence of machine effects';

/**
 * "Nothing lost for speed" (issue 16 item 6): trace hash, simulated end time, step count, schedule and
 * failure of lock-contention and kernel scenarios under every policy, recorded before the machine was
 * reorganised and sped up. Record new values with `SPF_RECORD_FINGERPRINTS=1` only in a commit that changes
 * simulated behaviour on purpose and says why (the kernel lines also move when vma or fault-classic change
 * the effects of a fault or a syscall).
 */

/** `cpus` CPUs each take a spinlock `rounds` times around a read-modify-write of a shared counter. */
function spinlockScenario(cpus: number, rounds: number): Scenario {
  return {
    cpus,
    setup(m) {
      const lock = new SpinLock('spin');
      const data = new AtomicCell(0, 'data');
      for (let i = 0; i < cpus; i++) {
        m.spawn(i, `t${i}`, function* (): Kernel<void> {
          for (let r = 0; r < rounds; r++) {
            yield* lock.lock();
            const v = yield* data.load();
            yield* delay(40 + 15 * i);
            yield* data.store(v + 1);
            yield* lock.unlock();
          }
        });
      }
      return () => kassert(data.value === cpus * rounds, `data is ${data.value}`);
    },
  };
}

/** Readers (trylock and down_read) against one writer on an rw_semaphore. */
function rwsemScenario(): Scenario {
  return {
    cpus: 4,
    setup(m) {
      const sem = new RwSemaphore('sem');
      const data = new AtomicCell(0, 'data');
      m.spawn(0, 'writer', function* () {
        for (let r = 0; r < 2; r++) {
          yield* sem.downWrite();
          yield* data.fetchAdd(1);
          yield* delay(400);
          yield* sem.upWrite();
          yield* delay(100);
        }
      });
      for (let i = 1; i < 4; i++) {
        m.spawn(i, `reader${i}`, function* () {
          for (let r = 0; r < 3; r++) {
            if (i === 3 && (yield* sem.downReadTrylock())) {
              yield* data.load();
            } else {
              yield* sem.downRead();
              yield* data.load();
            }
            yield* delay(150);
            yield* sem.upRead();
          }
        });
      }
    },
  };
}

/** Three CPUs contend for a mutex (fast path, spinning on the wait lock, sleeping, hand-over). */
function mutexScenario(): Scenario {
  return {
    cpus: 3,
    setup(m) {
      const mu = new Mutex('mu');
      const data = new AtomicCell(0, 'data');
      for (let i = 0; i < 3; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let r = 0; r < 2; r++) {
            yield* mu.lock();
            yield* data.fetchAdd(1);
            yield* delay(300);
            yield* mu.unlock();
          }
        });
      }
      return () => kassert(data.value === 6, `data is ${data.value}`);
    },
  };
}

/** Overlapping and disjoint read and write ranges on a range lock. */
function rangeLockScenario(): Scenario {
  return {
    cpus: 3,
    setup(m) {
      const rl = new RangeLock('rl');
      const ranges: Array<[number, number, 'read' | 'write']> = [
        [0, 100, 'write'],
        [50, 150, 'read'],
        [200, 300, 'write'],
      ];
      ranges.forEach(([s, e, mode], i) => {
        m.spawn(i, `t${i}`, function* () {
          for (let r = 0; r < 2; r++) {
            const h = mode === 'read' ? yield* rl.readLock(s, e) : yield* rl.writeLock(s, e);
            yield* delay(200);
            yield* rl.unlock(h);
          }
        });
      });
    },
  };
}

/** RCU readers against an updater that replaces an object and frees the old one after a grace period. */
function rcuScenario(): Scenario {
  return {
    cpus: 3,
    setup(m) {
      const rcu = new Rcu(m);
      const ptr = new Cell(new RcuBox(0, 'box0'), 'ptr');
      m.spawn(0, 'updater', function* () {
        for (let r = 1; r <= 2; r++) {
          const old = ptr.value;
          yield* ptr.store(new RcuBox(r, `box${r}`));
          if (r === 1) {
            yield* rcu.synchronize();
            old.poison('synchronize_rcu then free');
          } else yield* rcu.kfreeRcu(old, `box${r - 1}`);
        }
        yield* rcu.barrier();
      });
      for (let i = 1; i < 3; i++) {
        m.spawn(i, `reader${i}`, function* () {
          for (let r = 0; r < 3; r++) {
            yield* rcu.readLock();
            const box = yield* ptr.load();
            yield* box.get();
            yield* delay(120);
            yield* box.get();
            yield* rcu.readUnlock();
          }
        });
      }
    },
  };
}

const lockScenarios: Record<string, Scenario> = {
  spinlock: spinlockScenario(3, 3),
  rwsem: rwsemScenario(),
  mutex: mutexScenario(),
  'range lock': rangeLockScenario(),
  rcu: rcuScenario(),
};

// The scaling and cow-fork lines were re-recorded when the syscalls moved onto the fault path's page-table
// code (issue 12: one __pte_alloc() under Linux's locks, PTE updates under pte_offset_map_lock(), exit_mmap()
// freeing the page tables): those runs now perform the locking Linux does, so their effects changed on purpose.
const expected: Record<string, Record<string, string>> = {
  spinlock: {
    timed: '567a66ac t=2603 steps=189 sched=4a7f8a52 ok',
    random: 'ca704332 t=2772 steps=155 sched=c2ee9087 ok',
    pct: 'b6d1ce80 t=653 steps=93 sched=ef138148 ok',
    dfs: '12 runs a3bfc0a2',
    replay: 'b6d1ce80 t=653 steps=93 sched=ef138148 ok',
  },
  rwsem: {
    timed: 'ff805dee t=5237 steps=251 sched=6b97408e ok',
    random: 'ac2cd4ac t=5689 steps=282 sched=c996ecc3 ok',
    pct: '0783550c t=1212 steps=104 sched=dd4f5031 ok',
    dfs: '12 runs bbca32c0',
    replay: '0783550c t=1212 steps=104 sched=dd4f5031 ok',
  },
  mutex: {
    timed: '4f992308 t=5111 steps=192 sched=59a3a6a2 ok',
    random: 'f5194b09 t=3579 steps=129 sched=27756c14 ok',
    pct: '3f8864e7 t=928 steps=51 sched=f219ad14 ok',
    dfs: '12 runs b52b0f62',
    replay: '3f8864e7 t=928 steps=51 sched=f219ad14 ok',
  },
  'range lock': {
    timed: '14e274a3 t=2585 steps=176 sched=645bfa62 ok',
    random: '24e7e225 t=3452 steps=169 sched=c8f8e855 ok',
    pct: '547ea69f t=652 steps=129 sched=f4caaacf ok',
    dfs: '12 runs 49432726',
    replay: '547ea69f t=652 steps=129 sched=f4caaacf ok',
  },
  rcu: {
    timed: '592c9f86 t=3934 steps=83 sched=5af4b450 ok',
    random: 'c6e8bcf8 t=2488 steps=79 sched=32efab8e ok',
    pct: '056043d5 t=1872 steps=67 sched=be99aec6 ok',
    dfs: '12 runs 6b0434da',
    replay: '056043d5 t=1872 steps=67 sched=be99aec6 ok',
  },
  scaling: {
    timed: '461a6ec4 t=12256 steps=553 sched=a8026eb7 ok',
    random: 'f40d7320 t=13001 steps=577 sched=84e98f80 ok',
    pct: '090ba723 t=10931 steps=501 sched=8ee74f52 ok',
    dfs: '4 runs 03042910',
    replay: '090ba723 t=10931 steps=501 sched=8ee74f52 ok',
  },
  'scaling 16': {
    timed: 'e1ed2b3d t=72689 steps=4495 sched=dec508a1 ok',
  },
  'cow-fork': {
    timed: 'd14b022b t=13487 steps=567 sched=cb4e7556 ok',
    random: '21acaa4b t=14660 steps=573 sched=0b23cd2a ok',
    pct: 'f58de605 t=13368 steps=572 sched=e6659a6d ok',
    dfs: '4 runs 67a89923',
    replay: 'f58de605 t=13368 steps=572 sched=e6659a6d ok',
  },
};

function check(name: string, got: Record<string, string>): void {
  if (process.env.SPF_RECORD_FINGERPRINTS) console.log(`FP ${JSON.stringify({ [name]: got })}`);
  if (got.replay !== undefined) expect(got.replay).toBe(got.pct);
  expect(got).toEqual(expected[name]);
}

describe('trace hashes under every policy (nothing lost for speed)', () => {
  for (const [name, scenario] of Object.entries(lockScenarios)) {
    it(name, () =>
      check(
        name,
        policyFingerprints((p) => runScenario(scenario, p)),
      ),
    );
  }
  itClassicOnly(CLASSIC_TRACE, 'scaling, 3 threads of 2 pages', () => {
    check(
      'scaling',
      policyFingerprints((p) => runScaling({ threads: 3, pagesPerThread: 2, policy: p }).run, { dfsRuns: 4 }),
    );
  });
  itClassicOnly(
    CLASSIC_TRACE,
    'scaling, 16 threads of 4 pages, timed only (the spin-heavy contended read side)',
    () => {
      const r = runScaling({ threads: 16, pagesPerThread: 4 }).run;
      check('scaling 16', { timed: runFingerprint(r) });
    },
  );
  itClassicOnly(CLASSIC_TRACE, 'cow-fork', () => {
    check(
      'cow-fork',
      policyFingerprints((p) => runCowFork({ policy: p }).run, { dfsRuns: 4 }),
    );
  });
});

describe(`kernel scenarios reproduce under the ${matrixHandlerName()} fault handler`, () => {
  // What the pinned fingerprints above prove for the classic handler, without pinning values: every handler
  // of the test matrix runs deterministically and its explored schedules replay exactly.
  it('scaling and cow-fork: the same timed run twice gives the same trace, and replaying the PCT schedule reproduces it', () => {
    for (const run of [
      (policy: Policy) => runScaling({ threads: 3, pagesPerThread: 2, policy }).run,
      (policy: Policy) => runCowFork({ policy }).run,
    ]) {
      const a = policyFingerprints(run, { dfsRuns: 2 });
      const b = policyFingerprints(run, { dfsRuns: 2 });
      expect(a.replay).toBe(a.pct);
      expect(b).toEqual(a);
      expect(a.timed).toMatch(/ ok$/);
    }
  });
});

describe('the seed of a timed run (issue 11 item 7)', () => {
  it('boot({ seed }) varies the scaling run, seed 0 is the default run, and each seed reproduces', () => {
    const run = (seed?: number) => runScaling({ threads: 4, pagesPerThread: 4, seed });
    const base = run();
    expect(run(0).run.traceHash).toBe(base.run.traceHash);
    const sims = new Set<number>();
    for (const seed of [1, 2, 3, 4]) {
      const a = run(seed);
      expect(run(seed).run.traceHash).toBe(a.run.traceHash);
      expect(a.run.traceHash).not.toBe(base.run.traceHash);
      sims.add(a.simNs);
    }
    expect(sims.size).toBeGreaterThan(1);
  });
});
