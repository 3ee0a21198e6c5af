import {
  Cell,
  delay,
  type Kernel,
  kassert,
  Machine,
  runScenario,
  runSync,
  type Scenario,
  timed,
} from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RwsemPaths } from './rwsem-paths.js';
import { defaultLockdep } from './lockdep.js';
import {
  RWSEM_FLAG_HANDOFF,
  RWSEM_FLAG_WAITERS,
  RWSEM_READER_BIAS,
  RWSEM_WRITER_LOCKED,
  RwSemaphore,
  type RwSemaphoreOptions,
} from './rwsem.js';
import { fifoRwsemPaths } from './test-support/fifo-rwsem-paths.js';
import { forgetfulUpReadPaths, readerPreferencePaths } from './test-support/broken.js';
import { expectCaught, exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

const variants: Array<[string, RwSemaphoreOptions]> = [
  ['kernel rwsem', {}],
  ['kernel rwsem without spinning, immediate handoff', { optimisticSpin: false, handoffTimeoutNs: 0 }],
  ['fifoRwsemPaths', { paths: fifoRwsemPaths }],
];

/**
 * Readers check that the writer's two-word update is never half done; the writer increments a counter
 * non-atomically. `readers` reader CPUs and `writers` writer CPUs, `iters` sections each.
 */
function exclusion(
  opts: RwSemaphoreOptions,
  readers: number,
  writers: number,
  iters = 1,
  downgrade = false,
): Scenario {
  return {
    cpus: readers + writers,
    setup(m) {
      const sem = new RwSemaphore('mmap_lock', opts);
      const x = new Cell(0, 'data');
      const y = new Cell(0, x.line);
      let writersIn = 0;
      let readersIn = 0;
      for (let i = 0; i < writers; i++) {
        m.spawn(i, `w${i}`, function* () {
          for (let k = 0; k < iters; k++) {
            yield* sem.downWrite();
            writersIn++;
            kassert(
              writersIn === 1 && readersIn === 0,
              `writer with ${writersIn - 1} writers, ${readersIn} readers`,
            );
            const v = yield* x.load();
            yield* x.store(v + 1);
            yield* y.store(v + 1);
            writersIn--;
            if (downgrade) {
              yield* sem.downgradeWrite();
              readersIn++;
              kassert((yield* x.load()) === v + 1, 'a writer got in during downgrade');
              readersIn--;
              yield* sem.upRead();
            } else yield* sem.upWrite();
          }
        });
      }
      for (let i = 0; i < readers; i++) {
        m.spawn(writers + i, `r${i}`, function* () {
          for (let k = 0; k < iters; k++) {
            yield* sem.downRead();
            readersIn++;
            kassert(writersIn === 0, 'reader inside with a writer');
            const a = yield* x.load();
            const b = yield* y.load();
            kassert(a === b, `torn read ${a}/${b}`);
            readersIn--;
            yield* sem.upRead();
          }
        });
      }
      return () => {
        kassert(x.value === writers * iters, `counter ${x.value}`);
        kassert(!sem.isLocked(), `still locked: ${sem.describeHolders()}`);
      };
    },
  };
}

/** Readers keep taking the lock until the writer has had it once; the run ends only if the writer gets in. */
function stream(opts: RwSemaphoreOptions, readers: number): Scenario {
  return {
    cpus: readers + 1,
    maxSteps: 200_000,
    setup(m) {
      const sem = new RwSemaphore('sem', { ...opts, lockdep: false });
      let writerDone = false;
      m.spawn(0, 'writer', function* () {
        yield* delay(200);
        yield* sem.downWrite();
        writerDone = true;
        yield* sem.upWrite();
      });
      for (let i = 1; i <= readers; i++) {
        m.spawn(i, `r${i}`, function* () {
          while (!writerDone) {
            yield* sem.downRead();
            yield* delay(300, 'read section');
            yield* sem.upRead();
          }
        });
      }
    },
  };
}

describe.each(variants)('RwSemaphore (%s)', (label, opts) => {
  it(`excludes writers from readers and each other (${label})`, () => {
    exploreAll(exclusion(opts, 2, 1), `excludes writers from readers and each other (${label})`);
    exploreAll(exclusion(opts, 1, 2), `excludes writers from readers and each other (${label})`, [
      'random',
      'pct',
    ]);
  });

  it(`downgrade_write lets readers in but no writer (${label})`, () => {
    exploreAll(exclusion(opts, 1, 2, 1, true), `downgrade_write lets readers in but no writer (${label})`, [
      'random',
      'pct',
    ]);
  });

  it(`a waiting writer is not starved by a stream of readers (${label})`, () => {
    // Only fair schedulers: pct may keep the writer's CPU from ever running, which says nothing about the lock.
    exploreAll(stream(opts, 2), `a waiting writer is not starved by a stream of readers (${label})`, [
      'random',
    ]);
    const r = runScenario(stream(opts, 4), timed());
    expect(r.failure).toBeNull();
  });
});

describe('RwSemaphore', () => {
  it('follows the kernel count encoding', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    runSync(sem.downRead());
    runSync(sem.downRead());
    expect(sem.count.value).toBe(2 * RWSEM_READER_BIAS);
    expect(sem.readers()).toBe(2);
    expect(runSync(sem.downWriteTrylock())).toBe(false);
    runSync(sem.upRead());
    runSync(sem.upRead());
    expect(sem.count.value).toBe(0);
    expect(runSync(sem.downWriteTrylock())).toBe(true);
    expect(sem.count.value).toBe(RWSEM_WRITER_LOCKED);
    expect(sem.isWriteLocked()).toBe(true);
    expect(runSync(sem.downReadTrylock())).toBe(false);
    runSync(sem.downgradeWrite());
    expect(sem.count.value).toBe(RWSEM_READER_BIAS);
    expect(runSync(sem.downReadTrylock())).toBe(true);
    expect(sem.readers()).toBe(2);
  });

  it('sets the waiters bit while a writer sleeps, and clears it when the queue empties', () => {
    const m = new Machine({ cpus: 2 });
    const sem = new RwSemaphore('s', { optimisticSpin: false });
    const seen: number[] = [];
    m.spawn(0, 'reader', function* () {
      yield* sem.downRead();
      yield* delay(5000);
      // A load, not a plain read: code after a delay runs when the delay starts.
      seen.push(yield* sem.count.load());
      yield* sem.upRead();
    });
    m.spawn(1, 'writer', function* () {
      yield* delay(1000);
      yield* sem.downWrite();
      seen.push(sem.count.value);
      yield* sem.upWrite();
    });
    expect(m.run().failure).toBeNull();
    expect(seen[0] & RWSEM_FLAG_WAITERS).toBe(RWSEM_FLAG_WAITERS);
    expect(seen[1]).toBe(RWSEM_WRITER_LOCKED);
    expect(sem.count.value).toBe(0);
  });

  it('a writer that waited past the timeout sets the handoff bit, and nobody steals the lock from it', () => {
    const m = new Machine({ cpus: 4 });
    const sem = new RwSemaphore('s', { lockdep: false, handoffTimeoutNs: 2_000 });
    let writerDone = false;
    let sawHandoff = false;
    let stolenAfterHandoff = 0;
    m.spawn(0, 'writer', function* () {
      yield* delay(500);
      expect(yield* sem.downWriteKillable()).toBe(0);
      writerDone = true;
      yield* sem.upWrite();
    });
    for (let i = 1; i < 4; i++) {
      m.spawn(i, `r${i}`, function* () {
        while (!writerDone) {
          const before = yield* sem.count.load();
          yield* sem.downRead();
          if (before & RWSEM_FLAG_HANDOFF && !writerDone) stolenAfterHandoff++;
          yield* delay(700);
          yield* sem.upRead();
        }
      });
    }
    m.spawn(3, 'monitor', function* () {
      while (!writerDone) {
        if ((yield* sem.count.load()) & RWSEM_FLAG_HANDOFF) sawHandoff = true;
        yield* delay(100);
      }
    });
    expect(m.run().failure).toBeNull();
    expect(sawHandoff).toBe(true);
    expect(stolenAfterHandoff).toBe(0);
  });

  it('writers spin on a running owner instead of sleeping when optimistic spinning is on', () => {
    const sleeps = (spin: boolean) => {
      const m = new Machine({ cpus: 2, trace: true });
      const sem = new RwSemaphore('s', { optimisticSpin: spin, lockdep: false });
      for (let i = 0; i < 2; i++) {
        m.spawn(i, `w${i}`, function* () {
          for (let k = 0; k < 3; k++) {
            yield* sem.downWrite();
            yield* delay(200);
            yield* sem.upWrite();
          }
        });
      }
      const r = m.run();
      expect(r.failure).toBeNull();
      return r.trace!.filter((e) => e.kind === 'block').length;
    };
    expect(sleeps(true)).toBeLessThan(sleeps(false));
  });

  it('reports up_read without down_read, naming the lock and CPU', () => {
    const m = new Machine({ cpus: 2 });
    const sem = new RwSemaphore('mmap_lock');
    m.spawn(1, 't', function* () {
      yield* sem.upRead();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toMatch(/up_read of 'mmap_lock' by task 't' on CPU 1/);
    expect(sem.count.value).toBe(0);
  });

  it('reports up_write by a task that does not hold it', () => {
    const m = new Machine({ cpus: 2 });
    const sem = new RwSemaphore('mmap_lock');
    m.spawn(0, 'owner', function* () {
      yield* sem.downWrite();
      yield* delay(5000);
      yield* sem.upWrite();
    });
    m.spawn(1, 'other', function* () {
      yield* delay(1000);
      yield* sem.upWrite();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toMatch(
      /up_write of 'mmap_lock' by task 'other' on CPU 1, which does not hold it/,
    );
  });

  it('catches the broken up_read that forgets to wake the waiting writer', () => {
    const s = exclusion({ paths: forgetfulUpReadPaths }, 1, 1);
    for (const opts of [
      { policy: 'random', runs: 300, seed: 1 },
      { policy: 'pct', runs: 300, seed: 1 },
      { policy: 'dfs', bound: 1, runs: 3000 },
    ] as const) {
      const f = expectCaught(s, opts, 'deadlock');
      expect(f.message).toMatch(/w0 .* sleeps on 'mmap_lock'/);
    }
  });

  it('a reader-preference lock starves the writer where ours does not (timed)', () => {
    const starve = runScenario(stream({ paths: readerPreferencePaths }, 4), timed());
    expect(starve.failure?.kind).toBe('step-limit');
    for (const [, opts] of variants) expect(runScenario(stream(opts, 4), timed()).failure).toBeNull();
  });

  it('routes every operation through lab paths', () => {
    const calls: string[] = [];
    const spy: RwsemPaths = {
      *downRead(s) {
        calls.push('downRead');
        yield* fifoRwsemPaths.downRead(s);
      },
      *upRead(s) {
        calls.push('upRead');
        yield* fifoRwsemPaths.upRead(s);
      },
      *downWrite(s) {
        calls.push('downWrite');
        yield* fifoRwsemPaths.downWrite(s);
      },
      *upWrite(s) {
        calls.push('upWrite');
        yield* fifoRwsemPaths.upWrite(s);
      },
    };
    const sem = new RwSemaphore('lab', { paths: spy, lockdep: false });
    const run = (k: Kernel<unknown>) => runSync(k);
    run(sem.downRead());
    run(sem.upRead());
    run(sem.downWrite());
    expect(sem.isWriteLocked()).toBe(true);
    run(sem.downgradeWrite());
    expect(sem.readers()).toBe(1);
    run(sem.upRead());
    expect(run(sem.downReadTrylock())).toBe(false);
    expect(calls).toEqual(['downRead', 'upRead', 'downWrite', 'upWrite', 'downRead', 'upRead']);
  });
});
