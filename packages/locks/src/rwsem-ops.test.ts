import { delay, explore, type Kernel, Machine, now, runSync, type Scenario, yieldCpu } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current } from './current.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import type { RwsemPaths } from './rwsem-paths.js';
import {
  RWSEM_FLAG_HANDOFF,
  RWSEM_FLAG_WAITERS,
  RWSEM_READER_BIAS,
  RWSEM_WAIT_TIMEOUT_NS,
  RWSEM_WRITER_LOCKED,
  RwSemaphore,
  type RwSemaphoreOptions,
} from './rwsem.js';
import { SpinLock } from './spinlock.js';
import { fifoRwsemPaths } from './test-support/fifo-rwsem-paths.js';

/*
 * One rw_semaphore operation at a time, each on a small deterministic machine (no exploration): the count
 * word, the owner word, who gets the lock when, lockdep's view, and the effects each fast path costs.
 */

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

type Body = () => Kernel<void>;

/** Runs one task per body on CPUs 0, 1, ..., each starting `gap` ns after the previous one. */
function run(bodies: Body[], opts: { gap?: number; trace?: boolean; cpus?: number } = {}) {
  const m = new Machine({ cpus: opts.cpus ?? bodies.length, trace: opts.trace ?? false });
  bodies.forEach((body, i) => {
    m.spawn(i, `t${i}`, function* () {
      if (i > 0) yield* delay((opts.gap ?? 1000) * i);
      yield* body();
    });
  });
  return m.run();
}

/** The memory effects of the task on CPU `cpu`, as "kind label". */
function effects(trace: readonly { cpu: number; kind: string; label: string }[] | null, cpu = 0): string[] {
  return (trace ?? [])
    .filter((e) => e.cpu === cpu && (e.kind === 'read' || e.kind === 'write' || e.kind === 'rmw'))
    .map((e) => `${e.kind} ${e.label}`);
}

describe('RwSemaphore state', () => {
  it('keeps the count, owner and wait lock on one cache line, named after the lock', () => {
    const sem = new RwSemaphore('mmap_lock', { lockdep: false });
    expect(sem.line).toBe(sem.count.line);
    expect(sem.owner.line).toBe(sem.line);
    expect(sem.line.label).toBe('mmap_lock');
    expect(sem.lockClass).toBe('mmap_lock');
    expect(new RwSemaphore('a', { lockClass: 'vma_lock' }).lockClass).toBe('vma_lock');
    expect(sem.waitQueue.describe?.()).toBe('nobody');
  });

  it('describes its holders: nobody, the number of readers, or the writer task', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const seen: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downRead();
          yield* sem.downRead();
          seen.push(sem.describeHolders(), String(sem.waitQueue.describe?.()));
          yield* sem.upRead();
          yield* sem.upRead();
          seen.push(sem.describeHolders());
          yield* sem.downWrite();
          seen.push(sem.describeHolders());
          yield* sem.upWrite();
        },
      ],
      {},
    );
    expect(r.failure).toBeNull();
    expect(seen).toEqual(['2 reader(s)', '2 reader(s)', 'nobody', "writer task 't0' on CPU 0"]);
  });

  it('records the owner: the writer task, or the last reader with the reader-owned bit, and none when free', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const owners: string[] = [];
    const show = () => {
      const o = sem.owner.value;
      return `${o.task?.name ?? 'none'} ${o.readerOwned ? 'reader' : 'writer'}`;
    };
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          owners.push(show());
          yield* sem.upWrite();
          owners.push(show());
          yield* sem.downRead();
          owners.push(show());
          yield* sem.upRead();
          expect(yield* sem.downWriteTrylock()).toBe(true);
          owners.push(show());
          yield* sem.downgradeWrite();
          owners.push(show());
          yield* sem.upRead();
          expect(yield* sem.downReadTrylock()).toBe(true);
          owners.push(show());
          yield* sem.upRead();
        },
      ],
      {},
    );
    expect(r.failure).toBeNull();
    expect(owners).toEqual(['t0 writer', 'none writer', 't0 reader', 't0 writer', 't0 reader', 't0 reader']);
  });

  it('follows the kernel count encoding through every uncontended operation', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const counts: number[] = [];
    const r = run([
      function* () {
        yield* sem.downRead();
        expect(yield* sem.downReadTrylock()).toBe(true);
        counts.push(sem.count.value, sem.readers());
        expect(yield* sem.downWriteTrylock()).toBe(false);
        yield* sem.upRead();
        yield* sem.upRead();
        counts.push(sem.count.value);
        expect(yield* sem.downWriteKillable()).toBe(0);
        counts.push(sem.count.value);
        expect([sem.isLocked(), sem.isWriteLocked(), sem.readers()]).toEqual([true, true, 0]);
        expect(yield* sem.downReadTrylock()).toBe(false);
        expect(yield* sem.downWriteTrylock()).toBe(false);
        yield* sem.downgradeWrite();
        counts.push(sem.count.value, sem.readers());
        expect([sem.isLocked(), sem.isWriteLocked()]).toEqual([true, false]);
        yield* sem.upRead();
        expect(yield* sem.downReadKillable()).toBe(0);
        counts.push(sem.count.value);
        yield* sem.upRead();
        expect(sem.isLocked()).toBe(false);
        counts.push(sem.count.value);
      },
    ]);
    expect(r.failure).toBeNull();
    expect(counts).toEqual([
      2 * RWSEM_READER_BIAS,
      2,
      0,
      RWSEM_WRITER_LOCKED,
      RWSEM_READER_BIAS,
      1,
      RWSEM_READER_BIAS,
      0,
    ]);
  });

  it('uncontended fast paths cost one locked RMW of the count and one owner store, as in the kernel', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* sem.downRead();
          yield* sem.upRead();
          yield* sem.downWrite();
          yield* sem.upWrite();
          expect(yield* sem.downReadTrylock()).toBe(true);
          yield* sem.upRead();
          expect(yield* sem.downWriteTrylock()).toBe(true);
          yield* sem.upWrite();
        },
      ],
      { trace: true },
    );
    expect(r.failure).toBeNull();
    expect(effects(r.trace)).toEqual([
      // down_read: lock xadd, owner store. up_read: lock xadd.
      'rmw s',
      'write s',
      'rmw s',
      // down_write: lock cmpxchg, owner store. up_write: owner store, lock xadd.
      'rmw s',
      'write s',
      'write s',
      'rmw s',
      // down_read_trylock: a read, then lock cmpxchg, owner store.
      'read s',
      'rmw s',
      'write s',
      'rmw s',
      // down_write_trylock: lock cmpxchg, owner store.
      'rmw s',
      'write s',
      'write s',
      'rmw s',
    ]);
  });

  it('down_read_trylock fails at once when a writer holds it, without a locked RMW', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(10_000);
          yield* sem.upWrite();
        },
        function* () {
          expect(yield* sem.downReadTrylock()).toBe(false);
          expect(sem.readers()).toBe(0);
        },
      ],
      { trace: true },
    );
    expect(r.failure).toBeNull();
    expect(effects(r.trace, 1)).toEqual(['read s']);
  });

  it('down_read_trylock of readers racing each other always succeeds (the cmpxchg retries)', () => {
    const scenario: Scenario = {
      cpus: 3,
      setup(m) {
        const sem = new RwSemaphore('s', { lockdep: false });
        for (let i = 0; i < 3; i++) {
          m.spawn(i, `r${i}`, function* () {
            const ok = yield* sem.downReadTrylock();
            if (!ok) throw new Error(`reader ${i}: down_read_trylock failed with only readers around`);
            yield* sem.upRead();
          });
        }
        return () => {
          if (sem.count.value !== 0) throw new Error(`count ${sem.count.value}`);
        };
      },
    };
    expect(explore(scenario, { policy: 'random', runs: 200, seed: 3 }).failure).toBeNull();
    expect(explore(scenario, { policy: 'dfs', bound: 2, runs: 500 }).failure).toBeNull();
  });

  it('down_read_trylock that races a writer fails instead of getting in beside it', () => {
    const scenario: Scenario = {
      cpus: 2,
      setup(m) {
        const sem = new RwSemaphore('s', { lockdep: false });
        let writerIn = false;
        m.spawn(0, 'w', function* () {
          if (yield* sem.downWriteTrylock()) {
            writerIn = true;
            yield* delay(50);
            writerIn = false;
            yield* sem.upWrite();
          }
        });
        m.spawn(1, 'r', function* () {
          if (yield* sem.downReadTrylock()) {
            if (writerIn) throw new Error('reader beside a writer');
            yield* delay(50);
            yield* sem.upRead();
          }
        });
      },
    };
    expect(explore(scenario, { policy: 'dfs', bound: 3, runs: 2000 }).failure).toBeNull();
  });
});

describe('RwSemaphore waiting', () => {
  it('a reader waits for the writer, then is granted the lock by up_write', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(5000);
          log.push('w out');
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downRead();
          const o = sem.owner.value;
          log.push(
            `r in (${sem.readers()} reader, writer ${sem.isWriteLocked()}, owner ${o.task?.name} ${o.readerOwned})`,
          );
          yield* sem.upRead();
        },
      ],
      { trace: true },
    );
    expect(r.failure).toBeNull();
    // The waker records the reader it granted the lock to as the (reader) owner.
    expect(log).toEqual(['w out', 'r in (1 reader, writer false, owner t1 true)']);
    expect(sem.count.value).toBe(0);
    expect(sem.waiters).toEqual([]);
    // The reader queues behind a held writer without trying to wake anyone (rwsem_cond_wake_waiter() sees
    // the writer bit) and is granted the lock by the waker: its xadd, the owner, the wait lock, the count, the
    // adjustment, the wait lock released; then up_read.
    expect(effects(r.trace, 1)).toEqual([
      'rmw s',
      'read s',
      'rmw s',
      'read s',
      'read s',
      'rmw s',
      'write s',
      'rmw s',
    ]);
  });

  it('readers queued behind a writer all get in together when it leaves; a writer after them waits', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const reader = (name: string) =>
      function* () {
        yield* sem.downRead();
        log.push(`${name} in`);
        yield* delay(3000);
        log.push(`${name} out`);
        yield* sem.upRead();
      };
    let queued = '';
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(5000);
          queued = sem.waiters.map((w) => w.kind).join(',');
          log.push('w0 out');
          yield* sem.upWrite();
        },
        reader('r1'),
        reader('r2'),
        function* () {
          yield* delay(3000);
          yield* sem.downWrite();
          log.push('w3 in');
          yield* sem.upWrite();
        },
      ],
      { gap: 500 },
    );
    expect(r.failure).toBeNull();
    expect(queued).toBe('read,read,write');
    expect(log.slice(0, 3)).toEqual(['w0 out', 'r1 in', 'r2 in']);
    expect(log.indexOf('w3 in')).toBeGreaterThan(log.indexOf('r2 out'));
    expect(log.indexOf('w3 in')).toBeGreaterThan(log.indexOf('r1 out'));
    expect(sem.count.value).toBe(0);
  });

  it('a reader arriving while readers hold it and a writer waits queues behind the writer', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downRead();
          yield* delay(4000);
          log.push('r0 out');
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downRead();
          yield* delay(4000);
          log.push('r1 out');
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downWrite();
          log.push('w in');
          yield* delay(1000);
          log.push('w out');
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downRead();
          log.push('r3 in');
          yield* sem.upRead();
        },
      ],
      { gap: 300 },
    );
    expect(r.failure).toBeNull();
    expect(log).toEqual(['r0 out', 'r1 out', 'w in', 'w out', 'r3 in']);
  });

  it('a writer waits for the reader and the waiters bit is set while it sleeps, cleared when it gets in', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const seen: number[] = [];
    let queued = 0;
    const r = run([
      function* () {
        yield* sem.downRead();
        yield* delay(5000);
        seen.push(yield* sem.count.load());
        queued = sem.waiters.length;
        yield* sem.upRead();
      },
      function* () {
        yield* sem.downWrite();
        seen.push(sem.count.value);
        yield* sem.upWrite();
      },
    ]);
    expect(r.failure).toBeNull();
    expect(seen).toEqual([RWSEM_READER_BIAS | RWSEM_FLAG_WAITERS, RWSEM_WRITER_LOCKED]);
    expect(queued).toBe(1);
  });

  it('two writers queued behind a reader get the lock one after the other', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const writer = (name: string) =>
      function* () {
        yield* sem.downWrite();
        log.push(`${name} in (waiters ${(sem.count.value & RWSEM_FLAG_WAITERS) !== 0})`);
        yield* delay(1000);
        log.push(`${name} out`);
        yield* sem.upWrite();
      };
    const r = run(
      [
        function* () {
          yield* sem.downRead();
          yield* delay(5000);
          log.push('r out');
          yield* sem.upRead();
        },
        writer('w1'),
        writer('w2'),
      ],
      { gap: 500, trace: true },
    );
    expect(r.failure).toBeNull();
    // The first writer leaves the waiters bit for the second; the last one clears it.
    expect(log).toEqual(['r out', 'w1 in (waiters true)', 'w1 out', 'w2 in (waiters false)', 'w2 out']);
    expect(sem.count.value).toBe(0);
    // w2, queued behind w1 on a reader-held lock, wakes no one and keeps the wait lock while it tries: a
    // failed cmpxchg, the wait lock, one try, sleep; woken, the wait lock, the try that takes it, the owner;
    // then up_write.
    expect(effects(r.trace, 2)).toEqual([
      'rmw s',
      'rmw s',
      'read s',
      'read s',
      'read s',
      'write s',
      'rmw s',
      'read s',
      'read s',
      'rmw s',
      'write s',
      'write s',
      'write s',
      'rmw s',
    ]);
  });

  it('downgrade_write lets the readers queued at the head in at once, and keeps later writers out', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(5000);
          yield* sem.downgradeWrite();
          // The queued reader's bias is in the count already (it was granted the lock); w2 still waits.
          log.push(
            `downgraded: ${sem.count.value >>> 8} readers, waiters ${(sem.count.value & RWSEM_FLAG_WAITERS) !== 0}`,
          );
          yield* delay(5000);
          log.push('d out');
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downRead();
          log.push('r1 in');
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downWrite();
          log.push('w2 in');
          yield* sem.upWrite();
        },
      ],
      { gap: 500 },
    );
    expect(r.failure).toBeNull();
    expect(log).toEqual(['downgraded: 2 readers, waiters true', 'r1 in', 'd out', 'w2 in']);
    expect(sem.count.value).toBe(0);
  });

  it('downgrade_write wakes no one when a writer is first in the queue', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(5000);
          yield* sem.downgradeWrite();
          yield* delay(5000);
          log.push(`d out, ${sem.waiters.map((w) => w.kind).join(',')} queued`);
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downWrite();
          log.push('w1 in');
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downRead();
          log.push('r2 in');
          yield* sem.upRead();
        },
      ],
      { gap: 500 },
    );
    expect(r.failure).toBeNull();
    expect(log).toEqual(['d out, write,read queued', 'w1 in', 'r2 in']);
  });

  it('up_write grants at most 256 queued readers at once (MAX_READERS_WAKEUP); the rest follow', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const readers = 260;
    let mostAtOnce = 0;
    let entered = 0;
    let queued = 0;
    const bodies: Body[] = [
      function* () {
        yield* sem.downWrite();
        // Long enough for every reader to take the wait lock in turn and queue.
        yield* delay(5_000_000);
        queued = sem.waiters.length;
        yield* sem.upWrite();
      },
    ];
    for (let i = 0; i < readers; i++) {
      bodies.push(function* () {
        yield* sem.downRead();
        entered++;
        // Readers granted together have their biases in the count already.
        mostAtOnce = Math.max(mostAtOnce, sem.count.value >>> 8);
        yield* delay(1_000_000);
        yield* sem.upRead();
      });
    }
    const r = run(bodies, { gap: 10 });
    expect(r.failure).toBeNull();
    expect(queued).toBe(readers);
    expect(mostAtOnce).toBe(256);
    expect(entered).toBe(readers);
    expect(sem.count.value).toBe(0);
  });

  it('spins on a running writer owner by default instead of sleeping', () => {
    const blocks = (opts: { optimisticSpin?: boolean }) => {
      const sem = new RwSemaphore('s', { lockdep: false, ...opts });
      const body = function* () {
        for (let k = 0; k < 3; k++) {
          yield* sem.downWrite();
          yield* delay(200);
          yield* sem.upWrite();
        }
      };
      const r = run([body, body], { gap: 50, trace: true });
      expect(r.failure).toBeNull();
      return (r.trace ?? []).filter((e) => e.kind === 'block').length;
    };
    const sem = new RwSemaphore('s', { lockdep: false });
    const body = function* () {
      for (let k = 0; k < 3; k++) {
        yield* sem.downWrite();
        yield* delay(200);
        yield* sem.upWrite();
      }
    };
    const spins = run([body, body], { gap: 50, trace: true }).trace ?? [];
    // Spinning on the owner word, and between two attempts at the count.
    expect([...new Set(spins.filter((e) => e.kind === 'spin').map((e) => e.label))].sort()).toEqual([
      's (optimistic spin)',
      's (spin on owner)',
    ]);
    const off = blocks({ optimisticSpin: false });
    expect(off).toBeGreaterThan(0);
    expect(blocks({})).toBe(0);
    expect(blocks({ optimisticSpin: true })).toBe(0);
  });

  it('a writer stops spinning when the owner goes to sleep, and sleeps itself', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const other = new RwSemaphore('other', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* other.downWrite();
          yield* delay(1_000_000);
          yield* other.upWrite();
        },
        function* () {
          yield* sem.downWrite();
          // The owner of `sem` sleeps on `other` for about a millisecond.
          yield* other.downRead();
          yield* other.upRead();
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downWrite();
          yield* sem.upWrite();
        },
      ],
      { gap: 1000, trace: true },
    );
    expect(r.failure).toBeNull();
    const spinner = (r.trace ?? []).filter((e) => e.cpu === 2);
    expect(spinner.some((e) => e.kind === 'block')).toBe(true);
    expect(spinner.filter((e) => e.label.includes('spin')).length).toBeLessThan(20);
  });

  it('a writer does not spin on a reader-owned lock: it sleeps', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* sem.downRead();
          yield* delay(5000);
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downWrite();
          yield* sem.upWrite();
        },
      ],
      { trace: true },
    );
    expect(r.failure).toBeNull();
    const writer = (r.trace ?? []).filter((e) => e.cpu === 1);
    expect(writer.some((e) => e.kind === 'block')).toBe(true);
    expect(writer.filter((e) => e.label.includes('spin'))).toEqual([]);
  });

  it('the handoff bit is set only after the waiter has waited RWSEM_WAIT_TIMEOUT (4 ms by default)', () => {
    expect(RWSEM_WAIT_TIMEOUT_NS).toBe(4_000_000);
    const handoffAt = (opts: { handoffTimeoutNs?: number }) => {
      const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false, ...opts });
      let done = false;
      let first = -1;
      const reader = function* () {
        while (!done) {
          yield* sem.downRead();
          yield* delay(300_000);
          yield* sem.upRead();
        }
      };
      const r = run(
        [
          reader,
          reader,
          function* () {
            yield* sem.downWrite();
            done = true;
            yield* sem.upWrite();
          },
          function* () {
            for (let t = 0; !done && t < 20_000_000; t += 100_000) {
              if (first < 0 && (yield* sem.count.load()) & RWSEM_FLAG_HANDOFF) first = t;
              yield* delay(100_000);
            }
          },
        ],
        { gap: 100_000 },
      );
      expect(r.failure).toBeNull();
      expect(done).toBe(true);
      return first;
    };
    const byDefault = handoffAt({});
    expect(byDefault).toBeGreaterThanOrEqual(4_000_000);
    expect(byDefault).toBeLessThan(5_500_000);
    const quick = handoffAt({ handoffTimeoutNs: 1_000_000 });
    expect(quick).toBeGreaterThanOrEqual(1_000_000);
    expect(quick).toBeLessThan(2_500_000);
  });
});

describe('RwSemaphore slow-path corners (a late arrival swept over a window of nanoseconds)', () => {
  /**
   * Runs the tasks `build(at)` gives for every arrival time `at` in [from, to], each run on its own
   * semaphore; every run must end cleanly (the built-in checker stops a run with a reader beside a writer)
   * with the count back at 0 and nobody queued. Returns what each run logged, by arrival time.
   */
  function sweep(
    from: number,
    to: number,
    build: (sem: RwSemaphore, at: number, log: string[]) => Body[],
    opts: RwSemaphoreOptions = { optimisticSpin: false },
  ): Map<number, string> {
    const outcomes = new Map<number, string>();
    for (let at = from; at <= to; at++) {
      const sem = new RwSemaphore('s', { lockdep: false, ...opts });
      const log: string[] = [];
      const bodies = build(sem, at, log);
      const m = new Machine({ cpus: bodies.length, trace: true });
      bodies.forEach((body, i) => {
        m.spawn(i, `t${i}`, body);
      });
      const r = m.run();
      expect(r.failure, `arrival at ${at} ns`).toBeNull();
      expect([sem.count.value, sem.waiters.length], `arrival at ${at} ns`).toEqual([0, 0]);
      // Who slept how often, and who woke whom: a wake-up too many or too few shows here.
      const trace = r.trace ?? [];
      const sleeps = bodies.map(
        (_, i) => trace.filter((e) => e.task === `t${i}` && e.kind === 'block').length,
      );
      const wakes = trace.filter((e) => e.kind === 'wake-task').map((e) => `${e.task}>${e.label}`);
      outcomes.set(at, `${log.join(', ')}; sleeps ${sleeps.join('/')}; wakes ${wakes.join(' ')}`);
    }
    return outcomes;
  }

  it('a reader arriving as a writer is woken either steals the free lock first (the writer sleeps again) or follows it', () => {
    const outcomes = sweep(5100, 5420, (sem, at, log) => [
      function* () {
        yield* sem.downWrite();
        yield* delay(5000);
        yield* sem.upWrite(); // wakes w1, which takes a while to run
      },
      function* () {
        yield* delay(1000);
        yield* sem.downWrite();
        log.push('w1 in');
        yield* delay(100);
        yield* sem.upWrite();
      },
      function* () {
        yield* delay(at);
        yield* sem.downRead();
        // A stealing reader leaves the woken writer queued, with the waiters bit set.
        const o = sem.owner.value;
        log.push(`r2 in (queued: ${sem.waiters.map((w) => w.kind)}; owner ${o.task?.name} ${o.readerOwned})`);
        yield* delay(1000);
        yield* sem.upRead();
      },
    ]);
    // A block entry is recorded each time a task checks its wait condition; `t2>t2` is a reader whose own
    // queueing found the lock free and granted it to itself (rwsem_cond_wake_waiter()).
    expect([...new Set(outcomes.values())].sort()).toEqual([
      'r2 in (queued: write; owner t2 true), w1 in; sleeps 0/4/0; wakes t0>t1 t2>t1',
      'w1 in, r2 in (queued: ; owner t2 true); sleeps 0/2/0; wakes t0>t1',
      'w1 in, r2 in (queued: ; owner t2 true); sleeps 0/2/1; wakes t0>t1 t2>t2',
      'w1 in, r2 in (queued: ; owner t2 true); sleeps 0/2/2; wakes t0>t1 t1>t2',
      'w1 in, r2 in (queued: ; owner t2 true); sleeps 0/2/2; wakes t0>t1 t2>t1 t1>t2',
    ]);
    // Arriving while w1 holds it but leaves before r2 takes the wait lock, r2 finds the queue empty and no
    // writer: its bias already holds the lock, so it neither queues nor sleeps.
    expect(outcomes.get(5370)).toBe('w1 in, r2 in (queued: ; owner t2 true); sleeps 0/2/0; wakes t0>t1');
  });

  it('a reader arriving as the last reader leaves a waiting writer either steals the lock or follows the writer', () => {
    // Around the release the reader may also find the count changed under a cmpxchg (the writer retries).
    const outcomes = sweep(5050, 5420, (sem, at, log) => [
      function* () {
        yield* sem.downRead();
        yield* delay(5000);
        yield* sem.upRead(); // wakes w1
      },
      function* () {
        yield* delay(1000);
        yield* sem.downWrite();
        log.push('w1 in');
        yield* delay(100);
        yield* sem.upWrite();
      },
      function* () {
        yield* delay(at);
        yield* sem.downRead();
        log.push(`r2 in (queued: ${sem.waiters.map((w) => w.kind)})`);
        yield* delay(1000);
        yield* sem.upRead();
      },
    ]);
    expect([...new Set(outcomes.values())].sort()).toEqual([
      'r2 in (queued: write), w1 in; sleeps 0/4/0; wakes t0>t1 t2>t1',
      'w1 in, r2 in (queued: ); sleeps 0/2/0; wakes t0>t1',
      'w1 in, r2 in (queued: ); sleeps 0/2/1; wakes t0>t1 t2>t2',
      'w1 in, r2 in (queued: ); sleeps 0/2/2; wakes t0>t1 t1>t2',
      'w1 in, r2 in (queued: ); sleeps 0/2/2; wakes t2>t1 t1>t2',
    ]);
  });
});

describe('RwSemaphore traces', () => {
  it('labels its sleeps and spins, and keeps every slow-path access on its one line', () => {
    // w0 holds; w1 spins on it (running owner), r2 and w3 queue and sleep; everyone gets in.
    const sem = new RwSemaphore('s', { lockdep: false });
    const other = new RwSemaphore('other', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(3000);
          yield* other.downRead(); // sleeps: w1 stops spinning on a sleeping owner
          yield* other.upRead();
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downWrite();
          yield* sem.upWrite();
        },
        function* () {
          yield* sem.downRead();
          yield* sem.upRead();
        },
        function* () {
          yield* other.downWrite();
          yield* delay(10_000);
          yield* other.upWrite();
        },
      ],
      { gap: 500, trace: true },
    );
    expect(r.failure).toBeNull();
    const trace = r.trace ?? [];
    const labels = (task: string, kind: string) =>
      [...new Set(trace.filter((e) => e.task === task && e.kind === kind).map((e) => e.label))].sort();
    expect(labels('t1', 'spin')).toEqual(['s (spin on owner)']);
    expect(labels('t1', 'block')).toEqual(['s (down_write)']);
    expect(labels('t2', 'block')).toEqual(['s (down_read)']);
    // The count, the owner and the wait lock share the line 's'; contention on the wait lock is named.
    for (const t of ['t0', 't1', 't2']) {
      expect(labels(t, 'read').concat(labels(t, 'write'), labels(t, 'rmw'))).toEqual(
        expect.arrayContaining(['s']),
      );
      for (const kind of ['read', 'write', 'rmw'])
        expect(labels(t, kind).filter((l) => l !== 's' && l !== 'other')).toEqual([]);
    }
  });

  it('downgrade_write keeps the downgrader as the reader owner while it grants the queued readers, and wakes no queued writer', () => {
    const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
    const owners: string[] = [];
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* delay(5000);
          yield* sem.downgradeWrite();
          const o = sem.owner.value;
          owners.push(`${o.task?.name} ${o.readerOwned}`);
          yield* delay(5000);
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downRead();
          yield* sem.upRead();
        },
        function* () {
          yield* sem.downWrite();
          yield* sem.upWrite();
        },
      ],
      { gap: 500, trace: true },
    );
    expect(r.failure).toBeNull();
    expect(owners).toEqual(['t0 true']);
    const wakes = (r.trace ?? []).filter((e) => e.kind === 'wake-task').map((e) => `${e.task}>${e.label}`);
    // The downgrade wakes the reader only; the writer is woken by the last reader out.
    expect(wakes).toEqual(['t0>t1', 't0>t2']);
  });

  it('an uncontended downgrade_write is one locked RMW of the count and one owner store', () => {
    const sem = new RwSemaphore('s', { lockdep: false });
    const r = run(
      [
        function* () {
          yield* sem.downWrite();
          yield* sem.downgradeWrite();
          yield* sem.upRead();
        },
      ],
      { trace: true },
    );
    expect(r.failure).toBeNull();
    // down_write: cmpxchg + owner store; downgrade_write: fetch_add + owner store; up_read: xadd.
    expect(effects(r.trace)).toEqual(['rmw s', 'write s', 'rmw s', 'write s', 'rmw s']);
  });

  it('a writer does not spin on an owner that waits for its own CPU: it sleeps at once', () => {
    // Both tasks on CPU 0: the owner yields the CPU while holding the lock. Spinning on it would only burn
    // the CPU the owner needs (until the tick), so rwsem_spin_on_owner() gives up at once.
    const sem = new RwSemaphore('s', { lockdep: false });
    const m = new Machine({ cpus: 1, trace: true });
    const log: string[] = [];
    m.spawn(0, 'a', function* () {
      yield* sem.downWrite();
      yield* yieldCpu();
      yield* delay(1000);
      log.push('a out');
      yield* sem.upWrite();
    });
    m.spawn(0, 'b', function* () {
      yield* sem.downWrite();
      log.push(`b in before 100 us: ${(yield* now()) < 100_000}`);
      yield* sem.upWrite();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(log).toEqual(['a out', 'b in before 100 us: true']);
    const b = (r.trace ?? []).filter((e) => e.task === 'b');
    expect(b.filter((e) => e.kind === 'spin')).toEqual([]);
    expect(b.some((e) => e.kind === 'block')).toBe(true);
  });
});

describe('RwSemaphore handoff', () => {
  it('a reader starved by writers that keep stealing the lock sets the handoff bit after RWSEM_WAIT_TIMEOUT and then gets in', () => {
    // Two writers spin on each other's ownership and take the lock the moment it is released, before the
    // reader's wake-up can grant it (rwsem_mark_wake() finds the writer bit and backs out). Once the reader
    // has waited 4 ms, that back-out sets the handoff bit: the writers may no longer steal, and the next
    // release hands the lock to the reader, clearing the bit.
    const sem = new RwSemaphore('s', { lockdep: false });
    let readerIn = -1;
    let handoffHeld = false;
    const turns = [0, 0];
    const writer = (k: number) =>
      function* () {
        for (let i = 0; i < 400 && readerIn < 0; i++) {
          yield* sem.downWrite();
          turns[k]++;
          if (sem.count.value & RWSEM_FLAG_HANDOFF) handoffHeld = true;
          yield* delay(20_000);
          yield* sem.upWrite();
        }
      };
    const r = run(
      [
        writer(0),
        function* () {
          yield* delay(10);
          yield* writer(1)();
        },
        function* () {
          yield* sem.downRead();
          readerIn = yield* now();
          expect(sem.count.value & RWSEM_FLAG_HANDOFF).toBe(0);
          yield* sem.upRead();
        },
      ],
      { gap: 0, trace: true },
    );
    expect(r.failure).toBeNull();
    // The writers spin on each other; the wait lock, contended at each release, is named after the lock.
    const spins = new Set((r.trace ?? []).filter((e) => e.kind === 'spin').map((e) => e.label));
    expect([...spins].sort()).toEqual(['s (optimistic spin)', 's (spin on owner)', 's.wait_lock']);
    // It queued at once and waited out the timeout, while the writers took turns.
    expect(readerIn).toBeGreaterThan(RWSEM_WAIT_TIMEOUT_NS);
    expect(readerIn).toBeLessThan(RWSEM_WAIT_TIMEOUT_NS + 60_000);
    expect(turns[0] + turns[1]).toBeGreaterThan(150);
    expect(Math.abs(turns[0] - turns[1])).toBeLessThanOrEqual(1);
    expect(handoffHeld).toBe(false); // no writer got the lock with the bit set
    expect(sem.count.value).toBe(0);
  });

  it('once the first waiting writer set the handoff bit, a writer arriving later never gets in before it', () => {
    // Two readers keep the lock busy; w2 waits, sets the handoff bit after 4 ms, and the readers drain.
    // Wherever in that moment w3 arrives, it queues behind w2: rwsem_try_write_lock() honours the bit the
    // first waiter set even when the lock is free.
    const outcomes = new Set<string>();
    for (let at = 4_604_700; at <= 4_604_800; at++) {
      const sem = new RwSemaphore('s', { lockdep: false, optimisticSpin: false });
      let done = false;
      const log: string[] = [];
      const reader = function* () {
        while (!done) {
          yield* sem.downRead();
          yield* delay(300_000);
          yield* sem.upRead();
        }
      };
      const m = new Machine({ cpus: 4, trace: true });
      m.spawn(0, 'r0', reader);
      m.spawn(1, 'r1', function* () {
        yield* delay(100_000);
        yield* reader();
      });
      m.spawn(2, 'w2', function* () {
        yield* delay(200_000);
        yield* sem.downWrite();
        log.push('w2');
        done = true;
        yield* delay(1000);
        yield* sem.upWrite();
      });
      m.spawn(3, 'w3', function* () {
        yield* delay(at);
        yield* sem.downWrite();
        log.push('w3');
        yield* sem.upWrite();
      });
      const r = m.run();
      expect(r.failure).toBeNull();
      expect(log, `w3 arriving at ${at} ns`).toEqual(['w2', 'w3']);
      expect(sem.count.value).toBe(0);
      // Who woke whom around the hand-over (the readers' own wake-ups left out).
      const wakes = (r.trace ?? [])
        .filter((e) => e.kind === 'wake-task' && e.time > 4_500_000)
        .map((e) => `${e.task}>${e.label}`);
      const sleeps = ['w2', 'w3'].map(
        (t) => (r.trace ?? []).filter((e) => e.task === t && e.kind === 'block').length,
      );
      outcomes.add(`wakes ${wakes.join(' ')}; sleeps ${sleeps.join('/')}`);
    }
    // w2 checks its wait condition 32 times (woken by the readers' releases while they kept stealing); as
    // the readers drain, r1 wakes it twice, and in some runs w3, queueing behind it on a free lock, wakes it
    // first (rwsem_cond_wake_waiter()); w2's release grants the readers queued meanwhile, r1 then wakes w3.
    expect([...outcomes].sort()).toEqual([
      'wakes r1>w2 r1>w2 w2>r0 w2>r1 r1>w3; sleeps 32/2',
      'wakes w3>w2 r1>w2 r1>w2 w2>r0 w2>r1 r1>w3; sleeps 32/2',
    ]);
  });
});

describe('RwSemaphore checks', () => {
  it('reports up_read with no reader, naming the lock, the task and the holders', () => {
    const sem = new RwSemaphore('mmap_lock', { lockdep: false });
    const r = run([
      function* () {
        yield* sem.downWrite();
        yield* sem.upRead();
      },
    ]);
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "up_read of 'mmap_lock' by task 't0' on CPU 0, but no reader holds it (writer task 't0' on CPU 0); every up_read needs a matching down_read",
    );
  });

  it('reports up_write and downgrade_write without the write hold, naming the holders', () => {
    for (const op of ['up_write', 'downgrade_write'] as const) {
      const sem = new RwSemaphore('mmap_lock', { lockdep: false });
      const r = run([
        function* () {
          yield* sem.downRead();
          if (op === 'up_write') yield* sem.upWrite();
          else yield* sem.downgradeWrite();
        },
      ]);
      expect(r.failure?.kind).toBe('lock');
      expect(r.failure?.message).toBe(
        `${op} of 'mmap_lock' by task 't0' on CPU 0, which does not hold it for writing (1 reader(s))`,
      );
    }
    const sem = new RwSemaphore('mmap_lock', { lockdep: false });
    const r = run([
      function* () {
        yield* sem.upWrite();
      },
    ]);
    expect(r.failure?.message).toBe(
      "up_write of 'mmap_lock' by task 't0' on CPU 0, which does not hold it for writing (nobody)",
    );
  });

  it('reports up_write by a task other than the writer, and a failed down_write_trylock leaves the owner alone', () => {
    const sem = new RwSemaphore('mmap_lock', { lockdep: false });
    const owners: string[] = [];
    const r = run([
      function* () {
        yield* sem.downRead();
        yield* delay(10_000);
        yield* sem.upRead();
        yield* sem.downWrite();
        yield* delay(10_000);
        yield* sem.upWrite();
      },
      function* () {
        expect(yield* sem.downWriteTrylock()).toBe(false);
        const o = sem.owner.value;
        owners.push(`${o.task?.name} ${o.readerOwned}`);
        yield* delay(15_000);
        yield* sem.upWrite();
      },
    ]);
    expect(owners).toEqual(['t0 true']);
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "up_write of 'mmap_lock' by task 't1' on CPU 1, which does not hold it for writing (writer task 't0' on CPU 0)",
    );
  });

  it('names the holders in a deadlock report', () => {
    const sem = new RwSemaphore('mmap_lock', { lockdep: false, optimisticSpin: false });
    const r = run([
      function* () {
        yield* sem.downWrite();
        yield* sem.downRead();
      },
    ]);
    expect(r.failure?.kind).toBe('deadlock');
    expect(r.failure?.message).toContain("writer task 't0' on CPU 0");
  });

  it('its built-in checker catches lab paths that let a reader in beside a writer, or a writer beside readers', () => {
    const open: RwsemPaths = {
      *downRead() {},
      *upRead() {},
      *downWrite() {},
      *upWrite() {},
    };
    const sem = new RwSemaphore('lab', { lockdep: false, paths: open });
    const r = run([
      function* () {
        yield* sem.downWrite();
        yield* sem.downRead();
      },
    ]);
    expect(r.failure?.kind).toBe('assertion');
    expect(r.failure?.message).toContain(
      "rwsem 'lab': reader task 't0' on CPU 0 entered while writer task 't0' on CPU 0 holds it",
    );
    const sem2 = new RwSemaphore('lab', { lockdep: false, paths: open });
    const r2 = run([
      function* () {
        yield* sem2.downRead();
        yield* sem2.downWrite();
      },
    ]);
    expect(r2.failure?.message).toContain(
      "rwsem 'lab': writer task 't0' on CPU 0 entered while 1 reader(s) hold(s) it",
    );
    const sem3 = new RwSemaphore('lab', { lockdep: false, paths: open });
    const r3 = run([
      function* () {
        yield* sem3.downWrite();
        yield* sem3.downWrite();
      },
    ]);
    expect(r3.failure?.message).toContain(
      "rwsem 'lab': writer task 't0' on CPU 0 entered while writer task 't0' on CPU 0 hold(s) it",
    );
  });
});

describe('RwSemaphore lab paths', () => {
  it('routes every operation through the lab paths, trylocks failing when the lab gives none', () => {
    const calls: string[] = [];
    const spy: RwsemPaths = {
      *downRead(s) {
        calls.push(`downRead ${s.name}`);
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
    runSync(sem.downRead());
    runSync(sem.upRead());
    runSync(sem.downWrite());
    runSync(sem.downgradeWrite());
    expect([sem.readers(), sem.isWriteLocked()]).toEqual([1, false]);
    runSync(sem.upRead());
    expect(runSync(sem.downReadTrylock())).toBe(false);
    expect(runSync(sem.downWriteTrylock())).toBe(false);
    expect(sem.isLocked()).toBe(false);
    runSync(sem.downWrite());
    runSync(sem.upWrite());
    expect(sem.isLocked()).toBe(false);
    expect(calls).toEqual([
      'downRead lab',
      'upRead',
      'downWrite',
      'upWrite',
      'downRead lab',
      'upRead',
      'downWrite',
      'upWrite',
    ]);
  });

  it("uses the lab's trylocks and downgrade when it has them; the lab sees the state, not the lock", () => {
    const calls: string[] = [];
    const lab: RwsemPaths = {
      ...fifoRwsemPaths,
      *downReadTrylock(s) {
        calls.push('downReadTrylock');
        expect(s).not.toBeInstanceOf(RwSemaphore);
        expect(Object.isFrozen(s)).toBe(true);
        return true;
      },
      *downWriteTrylock() {
        calls.push('downWriteTrylock');
        return true;
      },
      *downgradeWrite() {
        calls.push('downgradeWrite');
      },
    };
    const sem = new RwSemaphore('lab', { paths: lab, lockdep: false });
    expect(runSync(sem.downReadTrylock())).toBe(true);
    expect(sem.readers()).toBe(1);
    expect(calls).toEqual(['downReadTrylock']);
    runSync(sem.upRead());
    expect(runSync(sem.downWriteTrylock())).toBe(true);
    expect(sem.isWriteLocked()).toBe(true);
    runSync(sem.downgradeWrite());
    expect([sem.readers(), sem.isWriteLocked()]).toEqual([1, false]);
    expect(calls).toEqual(['downReadTrylock', 'downWriteTrylock', 'downgradeWrite']);
  });
});

describe('RwSemaphore and lockdep', () => {
  it('down_read and down_write are held until released; a trylock is held but adds no dependency', () => {
    const outer = new SpinLock('outer');
    const sem = new RwSemaphore('sem');
    const held: string[][] = [];
    const r = run([
      function* () {
        const c = yield* current();
        yield* sem.downRead();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.upRead();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.downWrite();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.downgradeWrite();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.upRead();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* outer.lock();
        expect(yield* sem.downReadTrylock()).toBe(true);
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.upRead();
        expect(yield* sem.downWriteTrylock()).toBe(true);
        held.push([...defaultLockdep.heldBy(c)]);
        yield* sem.upWrite();
        yield* outer.unlock();
        held.push([...defaultLockdep.heldBy(c)]);
      },
    ]);
    expect(r.failure).toBeNull();
    expect(held).toEqual([['sem'], [], ['sem'], ['sem'], [], ['outer', 'sem'], ['outer', 'sem'], []]);
    expect(defaultLockdep.hasDependency('outer', 'sem')).toBe(false);
  });

  it('down_read and down_write record dependencies on the locks held', () => {
    for (const write of [false, true]) {
      defaultLockdep.reset();
      const sem = new RwSemaphore('sem');
      const inner = new SpinLock('ptl');
      const r = run([
        function* () {
          if (write) yield* sem.downWrite();
          else yield* sem.downRead();
          yield* inner.lock();
          yield* inner.unlock();
          if (write) yield* sem.upWrite();
          else yield* sem.upRead();
        },
      ]);
      expect(r.failure).toBeNull();
      expect(defaultLockdep.hasDependency('sem', 'ptl')).toBe(true);
    }
  });

  it('reports a down_read or down_write in atomic context (sleeping lock under a spinlock)', () => {
    for (const write of [false, true]) {
      const sem = new RwSemaphore('mmap_lock');
      const spin = new SpinLock('ptl');
      const r = run([
        function* () {
          yield* spin.lock();
          if (write) yield* sem.downWrite();
          else yield* sem.downRead();
        },
      ]);
      expect(r.failure?.kind).toBe('lockdep');
      expect(r.failure?.message).toMatch(/sleeping function called from invalid context: .* 'mmap_lock'/);
    }
  });

  it('down_write_nested with a subclass may take a second lock of the class; down_write may not', () => {
    const ld = new Lockdep();
    const a = new RwSemaphore('a', { lockdep: ld, lockClass: 'vma' });
    const b = new RwSemaphore('b', { lockdep: ld, lockClass: 'vma' });
    const ok = run([
      function* () {
        yield* a.downWrite();
        yield* b.downWriteNested(1);
        yield* b.upWrite();
        yield* a.upWrite();
      },
    ]);
    expect(ok.failure).toBeNull();
    expect(ld.hasDependency('vma', 'vma/1')).toBe(true);
    const bad = run([
      function* () {
        yield* a.downWrite();
        yield* b.downWrite();
      },
    ]);
    expect(bad.failure?.kind).toBe('lockdep');
    expect(bad.failure?.message).toMatch(/possible recursive locking detected: .*'b' \(class vma\)/);
  });

  it('reports to the validator it was given, and to none with lockdep: false', () => {
    const ld = new Lockdep();
    const own = new RwSemaphore('own', { lockdep: ld });
    const none = new RwSemaphore('none', { lockdep: false });
    let heldOwn: readonly string[] = [];
    let heldDefault: readonly string[] = [];
    const r = run([
      function* () {
        const c = yield* current();
        yield* own.downWrite();
        yield* none.downWrite();
        heldOwn = ld.heldBy(c);
        heldDefault = defaultLockdep.heldBy(c);
        yield* none.upWrite();
        yield* own.upWrite();
      },
    ]);
    expect(r.failure).toBeNull();
    expect(heldOwn).toEqual(['own']);
    expect(heldDefault).toEqual([]);
  });
});
