import { delay, type Kernel, Machine, now, runSync, yieldCpu } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep } from './lockdep.js';
import { Rcu } from './rcu.js';

beforeEach(() => defaultLockdep.reset());

/**
 * The grace-period rules of RCU one at a time, on the timed machine (deterministic: each run is the same
 * schedule). A grace period must wait for every read-side section that had begun when it started, and for
 * nothing else; callbacks wait for a grace period that starts after they were queued.
 */
describe('RCU grace-period rules', () => {
  it('a grace period does not wait for a reader that begins after it started', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let syncDone = -1;
    let readerEnd = -1;
    m.spawn(0, 'late reader', function* () {
      yield* delay(1_000);
      yield* rcu.readLock();
      yield* delay(50_000);
      readerEnd = yield* now();
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* rcu.synchronize();
      syncDone = yield* now();
    });
    expect(m.run().failure).toBeNull();
    expect(syncDone).toBeGreaterThanOrEqual(0);
    expect(syncDone).toBeLessThan(1_000);
    expect(readerEnd).toBeGreaterThan(50_000);
  });

  it('a reader that leaves and enters a new section ends the wait (the exit is a quiescent state)', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let syncDone = -1;
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(10_000);
      // Back-to-back sections: the poller may never see nesting 0 between them, only the exit counter move.
      for (let i = 0; i < 50; i++) {
        yield* rcu.readUnlock();
        yield* rcu.readLock();
        yield* delay(1_999 + (i % 7));
      }
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
      syncDone = yield* now();
    });
    expect(m.run().failure).toBeNull();
    expect(syncDone).toBeGreaterThan(10_000);
    expect(syncDone).toBeLessThan(13_000);
  });

  it('leaving an inner nested section is not a quiescent state: the wait lasts to the outermost unlock', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let syncDone = -1;
    let outerUnlock = -1;
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* rcu.readLock();
      yield* delay(5_000);
      yield* rcu.readUnlock(); // still inside the outer section
      expect(rcu.isReading(0)).toBe(true);
      yield* delay(20_000);
      outerUnlock = yield* now();
      yield* rcu.readUnlock();
      expect(rcu.isReading(0)).toBe(false);
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
      syncDone = yield* now();
    });
    expect(m.run().failure).toBeNull();
    expect(syncDone).toBeGreaterThan(outerUnlock);
  });

  it('a grace period waits for every CPU inside a section, not just one', () => {
    const m = new Machine({ cpus: 4 });
    const rcu = new Rcu(m);
    let syncDone = -1;
    for (const [cpu, len] of [
      [0, 3_000],
      [1, 30_000],
      [2, 9_000],
    ] as const) {
      m.spawn(cpu, `reader${cpu}`, function* () {
        yield* rcu.readLock();
        yield* delay(len);
        yield* rcu.readUnlock();
      });
    }
    m.spawn(3, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
      syncDone = yield* now();
    });
    expect(m.run().failure).toBeNull();
    expect(syncDone).toBeGreaterThan(30_000);
    expect(rcu.completed).toBe(1);
  });

  it('a callback queued while a grace period is in progress waits for the next one', () => {
    const m = new Machine({ cpus: 4 });
    const rcu = new Rcu(m);
    let ranAt = -1;
    let runs = 0;
    let lateReaderEnd = -1;
    let firstGpEnd = -1;
    // Reader A holds the first grace period open until t = 10 µs.
    m.spawn(0, 'reader A', function* () {
      yield* rcu.readLock();
      yield* delay(10_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize(); // grace period 1 starts at ~0.1 µs and waits for A only
      firstGpEnd = yield* now();
    });
    // Reader B starts after grace period 1 began, and runs to t = 40 µs.
    m.spawn(2, 'reader B', function* () {
      yield* delay(1_000);
      yield* rcu.readLock();
      yield* delay(39_000);
      lateReaderEnd = yield* now();
      yield* rcu.readUnlock();
    });
    // The callback is queued at t = 2 µs, during grace period 1: only a later one may run it, and that
    // one must wait for reader B.
    m.spawn(3, 'caller', function* () {
      yield* delay(2_000);
      yield* rcu.callRcu(function* (): Kernel<void> {
        runs++;
        if (ranAt < 0) ranAt = yield* now();
      });
    });
    expect(m.run().failure).toBeNull();
    expect(runs).toBe(1);
    expect(firstGpEnd).toBeGreaterThan(10_000);
    expect(firstGpEnd).toBeLessThan(40_000);
    expect(ranAt).toBeGreaterThan(lateReaderEnd);
    expect(rcu.completed).toBe(2);
    expect(rcu.pendingCallbacks).toBe(0);
  });

  it('callbacks run in the order they were queued, each once, and rcu_barrier waits for all of them', () => {
    const rcu = new Rcu(2);
    const ran: number[] = [];
    for (let i = 0; i < 3; i++) runSync(rcu.callRcu(() => void ran.push(i)));
    expect(rcu.pendingCallbacks).toBe(3);
    expect(ran).toEqual([]);
    runSync(rcu.barrier());
    expect(ran).toEqual([0, 1, 2]);
    expect(rcu.pendingCallbacks).toBe(0);
    runSync(rcu.synchronize());
    expect(ran).toEqual([0, 1, 2]);
  });

  it('without a machine, a callback queued before synchronize runs at its end; one queued after waits', () => {
    const rcu = new Rcu(1);
    const ran: string[] = [];
    runSync(rcu.callRcu(() => void ran.push('first')));
    runSync(rcu.synchronize());
    expect(ran).toEqual(['first']);
    expect(rcu.completed).toBe(1);
    runSync(rcu.callRcu(() => void ran.push('second')));
    expect(ran).toEqual(['first']);
    runSync(rcu.synchronize());
    expect(ran).toEqual(['first', 'second']);
    expect(rcu.completed).toBe(2);
  });

  it('the rcu_gp kthread exits when no callback is left, and a later call_rcu starts a new one', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    const ran: number[] = [];
    m.spawn(0, 'early caller', function* () {
      yield* rcu.callRcu(() => void ran.push(1));
    });
    m.spawn(1, 'late caller', function* () {
      yield* delay(50_000);
      yield* rcu.callRcu(() => void ran.push(2));
    });
    expect(m.run().failure).toBeNull();
    expect(ran).toEqual([1, 2]);
    expect(m.allTasks().filter((t) => t.name === 'rcu_gp')).toHaveLength(2);
  });

  it('a reader that keeps entering new sections back to back does not hold a grace period open (forward progress)', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let done = false;
    let sections = 0;
    let sectionsAtEnd = -1;
    m.spawn(0, 'reader', function* () {
      // Almost always inside a section: only the exit counter shows that the first one ended.
      while (!done && sections < 200) {
        yield* rcu.readLock();
        yield* delay(1_000);
        yield* rcu.readUnlock();
        sections++;
      }
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(500);
      yield* rcu.synchronize();
      sectionsAtEnd = sections;
      done = true;
    });
    // synchronize_rcu() yields its CPU between looks: a busy task there makes the looks rare, so they land
    // inside the reader's sections, not in the short gaps between them.
    m.spawn(1, 'busy', function* () {
      while (!done) {
        yield* delay(2_300);
        yield* yieldCpu();
      }
    });
    expect(m.run().failure).toBeNull();
    expect(sectionsAtEnd).toBeGreaterThanOrEqual(1);
    expect(sectionsAtEnd).toBeLessThanOrEqual(5);
  });

  it('the completed count never goes back when a later grace period ends before an earlier one', () => {
    const m = new Machine({ cpus: 3 });
    const rcu = new Rcu(m);
    const order: string[] = [];
    // Reader holds grace period 1 open until 5 µs; grace period 2 starts at 6 µs with nobody inside and
    // ends at once, while grace period 1's waiter only looks again after its long relax.
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(5_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'early sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
      order.push(`early ${rcu.completed}`);
    });
    m.spawn(2, 'late sync', function* () {
      yield* delay(5_000);
      yield* rcu.synchronize();
      order.push(`late ${rcu.completed}`);
    });
    expect(m.run().failure).toBeNull();
    expect(rcu.completed).toBe(2);
    expect(order).toEqual(['late 2', 'early 2']);
  });

  it('at the end of a grace period the callbacks it covers run and the ones queued during it stay queued', () => {
    // Built with a CPU count: no rcu_gp kthread, so the two synchronize_rcu calls below are the only
    // grace periods.
    const m = new Machine({ cpus: 4 });
    const rcu = new Rcu(4);
    const ran: string[] = [];
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(10_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* rcu.callRcu(() => void ran.push('before'));
      yield* delay(100);
      yield* rcu.synchronize(); // grace period 1: waits for the reader until 10 µs
      ran.push(`gp1 done, ${rcu.pendingCallbacks} pending`);
      yield* delay(50_000);
      yield* rcu.synchronize(); // grace period 2
    });
    m.spawn(2, 'caller', function* () {
      yield* delay(2_000);
      yield* rcu.callRcu(() => void ran.push('during'));
    });
    expect(m.run().failure).toBeNull();
    expect(ran).toEqual(['before', 'gp1 done, 1 pending', 'during']);
    expect(rcu.pendingCallbacks).toBe(0);
  });

  it('one rcu_gp kthread serves every callback queued while it runs', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    const ran: number[] = [];
    m.spawn(0, 'caller', function* () {
      for (let i = 0; i < 3; i++) {
        // Typed as returning nothing, but push returns a number at run time: plain code, not kernel code.
        const cb: () => void = () => ran.push(i);
        yield* rcu.callRcu(cb);
      }
    });
    expect(m.run().failure).toBeNull();
    expect(ran).toEqual([0, 1, 2]);
    expect(m.allTasks().filter((t) => t.name === 'rcu_gp')).toHaveLength(1);
  });
});
