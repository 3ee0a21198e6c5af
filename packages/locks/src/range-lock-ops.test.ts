import { delay, type Kernel, Machine, runSync, sendIpi } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current } from './current.js';
import { LockError } from './lock-error.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { RangeLock, type RangeLockHandle } from './range-lock.js';
import { RwSemaphore } from './rwsem.js';
import { SpinLock } from './spinlock.js';

/*
 * One range-lock operation at a time, on small deterministic machines (no exploration): which request gets
 * in when, what the lock reports about its holders, its checks, and lockdep's view.
 */

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

type Body = () => Kernel<void>;

/** Runs one task per body on CPUs 0, 1, ..., each starting `gap` ns after the previous one. */
function run(bodies: Body[], gap = 1000, trace = false) {
  const m = new Machine({ cpus: bodies.length, trace });
  bodies.forEach((body, i) => {
    m.spawn(i, `t${i}`, function* () {
      if (i > 0) yield* delay(gap * i);
      yield* body();
    });
  });
  return m.run();
}

/** A task that holds a range for `hold` ns and logs when it gets in and leaves. */
function holder(
  lock: RangeLock,
  log: string[],
  name: string,
  start: number,
  end: number,
  kind: 'read' | 'write',
  hold = 5000,
): Body {
  return function* () {
    const h = kind === 'read' ? yield* lock.readLock(start, end) : yield* lock.writeLock(start, end);
    log.push(`${name} in`);
    yield* delay(hold);
    log.push(`${name} out`);
    yield* lock.unlock(h);
  };
}

describe('RangeLock: who waits for whom', () => {
  it('overlapping readers share; a writer waits for every overlapping holder, and readers after it wait for it', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run([
      holder(lock, log, 'r0', 0, 10, 'read', 5000),
      holder(lock, log, 'r1', 5, 15, 'read', 8000),
      holder(lock, log, 'w2', 8, 12, 'write', 1000),
      holder(lock, log, 'r3', 11, 20, 'read', 1000),
    ]);
    expect(r.failure).toBeNull();
    expect(log).toEqual(['r0 in', 'r1 in', 'r0 out', 'r1 out', 'w2 in', 'w2 out', 'r3 in', 'r3 out']);
  });

  it('ranges that only touch ([0, 10) and [10, 20)) or are disjoint never wait for each other', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run([
      holder(lock, log, 'a', 0, 10, 'write', 5000),
      holder(lock, log, 'b', 10, 20, 'write', 1000),
      holder(lock, log, 'c', 30, 40, 'write', 1000),
      holder(lock, log, 'd', 0, 10, 'read', 1000),
    ]);
    expect(r.failure).toBeNull();
    for (const other of ['b in', 'c in', 'b out', 'c out'])
      expect(log.indexOf(other)).toBeLessThan(log.indexOf('a out'));
    expect(log.slice(-3)).toEqual(['a out', 'd in', 'd out']);
  });

  it('a request wakes only when every earlier conflicting request has left', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run([
      holder(lock, log, 'w0', 0, 10, 'write', 4000),
      holder(lock, log, 'w1', 20, 30, 'write', 8000),
      holder(lock, log, 'r2', 5, 25, 'read', 1000),
    ]);
    expect(r.failure).toBeNull();
    expect(log).toEqual(['w0 in', 'w1 in', 'w0 out', 'w1 out', 'r2 in', 'r2 out']);
  });

  it('reports held ranges in start order, waiting requests, readers and writers, and describes the holders', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const seen: unknown[] = [];
    const r = run([
      function* () {
        seen.push(lock.describeHolders(), lock.waitQueue.describe?.(), lock.isLocked());
        const w = yield* lock.writeLock(20, 30);
        const a = yield* lock.readLock(0, 10);
        const b = yield* lock.readLock(5, 8);
        yield* delay(5000);
        seen.push(
          lock.isLocked(),
          lock.heldRanges().map((h) => `${h.kind} ${h.start}-${h.end}`),
          lock.waiting(),
          lock.readers(),
          lock.isWriteLocked(),
          lock.describeHolders(),
        );
        yield* lock.unlock(w);
        seen.push(lock.isWriteLocked(), lock.readers());
        yield* lock.unlock(a);
        yield* lock.unlock(b);
        seen.push(lock.isLocked(), lock.describeHolders());
      },
      function* () {
        const h = yield* lock.writeLock(25, 26);
        yield* lock.unlock(h);
      },
    ]);
    expect(r.failure).toBeNull();
    expect(seen).toEqual([
      'nobody',
      'nobody',
      false,
      true,
      ['read 0-10', 'read 5-8', 'write 20-30'],
      1,
      2,
      true,
      'read [0, 10), read [5, 8), write [20, 30)',
      false,
      2,
      false,
      'nobody',
    ]);
  });

  it('downgrade turns a held write range into a read range: later overlapping readers get in, writers still wait', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          const h = yield* lock.writeLock(0, 10);
          yield* delay(5000);
          yield* lock.downgrade(h);
          log.push(`downgraded: ${lock.heldRanges().map((x) => x.kind)}`);
          yield* delay(5000);
          log.push('d out');
          yield* lock.unlock(h);
        },
        holder(lock, log, 'r1', 5, 15, 'read', 1000),
        holder(lock, log, 'w2', 8, 9, 'write', 1000),
        holder(lock, log, 'r3', 0, 9, 'read', 1000),
      ],
      500,
    );
    expect(r.failure).toBeNull();
    // r3 came after the waiting writer w2 and overlaps only the downgraded range: it waits for w2.
    expect(log.slice(0, 3)).toEqual(['downgraded: read', 'r1 in', 'r1 out']);
    expect(log.indexOf('w2 in')).toBeGreaterThan(log.indexOf('d out'));
    expect(log.indexOf('r3 in')).toBeGreaterThan(log.indexOf('w2 out'));
  });
});

describe('RangeLock wake-ups', () => {
  /** The tasks the task on `cpu` woke, in order, and the lines its memory effects touched. */
  function wakesBy(r: ReturnType<typeof run>, cpu: number) {
    const mine = (r.trace ?? []).filter((e) => e.cpu === cpu);
    return {
      woke: mine.filter((e) => e.kind === 'wake-task').map((e) => e.label),
      lines: [...new Set(mine.filter((e) => ['read', 'write', 'rmw'].includes(e.kind)).map((e) => e.label))],
    };
  }

  it('unlock wakes exactly the later conflicting requests it was the last obstacle of, in start order', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          const h = yield* lock.writeLock(0, 10);
          yield* delay(5000);
          log.push(`waiting ${lock.waiting()}`);
          yield* lock.unlock(h);
        },
        holder(lock, log, 'r1', 5, 15, 'read', 3000), // waits for t0 only
        holder(lock, log, 'r2', 0, 3, 'read', 3000), // waits for t0 only
        holder(lock, log, 'w3', 8, 20, 'write', 1000), // waits for t0 and r1
        holder(lock, log, 'r4', 30, 40, 'read', 1000), // disjoint: never waits
      ],
      500,
      true,
    );
    expect(r.failure).toBeNull();
    const woke = wakesBy(r, 0);
    // w3 still waits for r1 after t0 leaves: it is not woken (it would only sleep again).
    expect(woke.woke).toEqual(['t2', 't1']);
    expect(woke.lines).toEqual(['l.tree_lock']);
    expect(log.slice(0, 3)).toEqual(['r4 in', 'r4 out', 'waiting 3']);
    expect(log.slice(3, 5).sort()).toEqual(['r1 in', 'r2 in']);
    expect(log.indexOf('w3 in')).toBeGreaterThan(log.indexOf('r1 out'));
    // r1's unlock wakes w3; r2's (which w3 does not overlap) wakes no one.
    expect(wakesBy(r, 1).woke).toEqual(['t3']);
    expect(wakesBy(r, 2).woke).toEqual([]);
  });

  it('downgrade wakes exactly the later readers it alone held back; writers and readers behind a writer stay asleep', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const log: string[] = [];
    const r = run(
      [
        function* () {
          const h = yield* lock.writeLock(0, 10);
          yield* delay(5000);
          yield* lock.downgrade(h);
          log.push(`downgraded, waiting ${lock.waiting()}`);
          yield* delay(5000);
          log.push('d out');
          yield* lock.unlock(h);
        },
        holder(lock, log, 'r1', 2, 4, 'read', 1000), // held back by t0 only
        holder(lock, log, 'w2', 5, 6, 'write', 1000), // a writer: still waits for the read range
        holder(lock, log, 'r3', 5, 8, 'read', 1000), // waits for t0 and w2
        holder(lock, log, 'r4', 8, 9, 'read', 1000), // held back by t0 only
      ],
      500,
      true,
    );
    expect(r.failure).toBeNull();
    expect(wakesBy(r, 0).woke.slice(0, 2)).toEqual(['t1', 't4']);
    // Woken but not yet running, r1 and r4 still count as waiting when downgrade returns.
    expect(log.slice(0, 5)).toEqual(['downgraded, waiting 4', 'r1 in', 'r4 in', 'r1 out', 'r4 out']);
    expect(log.indexOf('w2 in')).toBeGreaterThan(log.indexOf('d out'));
    expect(log.indexOf('r3 in')).toBeGreaterThan(log.indexOf('w2 out'));
  });

  it('sleeps only when it must: an uncontended request records no sleep, a contended one sleeps under its range', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const r = run(
      [
        function* () {
          const a = yield* lock.writeLock(0, 10);
          const b = yield* lock.readLock(20, 30);
          yield* delay(3000);
          yield* lock.unlock(a);
          yield* lock.unlock(b);
        },
        holder(lock, [], 'r1', 5, 25, 'read', 100),
      ],
      1000,
      true,
    );
    expect(r.failure).toBeNull();
    const blocks = (r.trace ?? []).filter((e) => e.kind === 'block').map((e) => `${e.task}: ${e.label}`);
    expect(blocks).toEqual(['t1: l [5, 25) read', 't1: l [5, 25) read']);
  });
});

describe('RangeLock trylocks', () => {
  it('take a free range, and fail (leaving nothing queued) on a conflicting holder or an earlier waiting request', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const got: unknown[] = [];
    const r = run([
      function* () {
        const w = yield* lock.writeTrylock(0, 10);
        got.push(w === null ? null : `${w.kind} ${w.start}-${w.end}`);
        got.push(yield* lock.readTrylock(5, 6), yield* lock.writeTrylock(9, 20));
        got.push(lock.waiting());
        const rd = yield* lock.readTrylock(10, 20);
        got.push(rd?.kind);
        got.push((yield* lock.readTrylock(15, 16))?.kind);
        yield* delay(5000);
        // t1's writer now waits for [10, 20): a reader trylock overlapping it fails, one beside it does not.
        got.push(lock.waiting(), yield* lock.readTrylock(13, 19), (yield* lock.readTrylock(20, 21))?.kind);
        yield* delay(5000);
      },
      function* () {
        const h = yield* lock.writeLock(12, 14);
        yield* lock.unlock(h);
      },
    ]);
    // t0 never unlocks: the run ends with t1 asleep.
    expect(r.failure?.kind).toBe('deadlock');
    expect(got).toEqual(['write 0-10', null, null, 0, 'read', 'read', 1, null, 'read']);
  });
});

describe('RangeLock whole-range methods (a drop-in mmap lock)', () => {
  it('down_write excludes every range; down_read shares with range readers; both are per task', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    const log: string[] = [];
    const r = run([
      function* () {
        yield* lock.downWrite();
        log.push(`w ${lock.describeHolders()}`);
        yield* delay(5000);
        yield* lock.upWrite();
        yield* lock.downRead();
        expect(yield* lock.downReadTrylock()).toBe(true);
        log.push(`r ${lock.readers()}`);
        yield* delay(5000);
        yield* lock.upRead();
        yield* lock.upRead();
        expect(yield* lock.downWriteTrylock()).toBe(true);
        yield* lock.upWrite();
      },
      holder(lock, log, 'far', 2 ** 50, 2 ** 50 + 1, 'read', 1000),
    ]);
    expect(r.failure).toBeNull();
    expect(log).toEqual(['w write [0, Infinity)', 'far in', 'r 3', 'far out']);
  });

  it('down_read_trylock and down_write_trylock fail while another task holds it for writing', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    const got: boolean[] = [];
    const r = run([
      function* () {
        yield* lock.downWrite();
        yield* delay(5000);
        yield* lock.upWrite();
      },
      function* () {
        got.push(yield* lock.downReadTrylock(), yield* lock.downWriteTrylock());
        // Nothing was remembered for this task: up_read now is an error.
        yield* lock.upRead();
      },
    ]);
    expect(got).toEqual([false, false]);
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "up_read of 'mmap_lock' by task 't1' on CPU 1, which holds no whole-range read lock of it (write [0, Infinity))",
    );
  });

  it('up_read releases the newest whole-range read hold, up_write the write hold, downgrade_write the write hold', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    const seen: string[] = [];
    const r = run([
      function* () {
        yield* lock.downWrite();
        yield* lock.downgradeWrite();
        seen.push(lock.describeHolders());
        yield* lock.upRead();
        seen.push(lock.describeHolders());
        yield* lock.upWrite();
      },
    ]);
    expect(seen).toEqual(['read [0, Infinity)', 'nobody']);
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "up_write of 'mmap_lock' by task 't0' on CPU 0, which holds no whole-range write lock of it (nobody)",
    );
  });

  it('up_write while holding only a whole-range read hold is an error, and the read hold stays', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    let held = '';
    const r = run([
      function* () {
        yield* lock.downRead();
        held = lock.describeHolders();
        yield* lock.upWrite();
      },
    ]);
    expect(held).toBe('read [0, Infinity)');
    expect(r.failure?.message).toBe(
      "up_write of 'mmap_lock' by task 't0' on CPU 0, which holds no whole-range write lock of it (read [0, Infinity))",
    );
    expect(lock.describeHolders()).toBe('read [0, Infinity)');
  });

  it('downgrade_write without a whole-range write hold is an error naming the lock', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    const r = run([
      function* () {
        yield* lock.downRead();
        yield* lock.downgradeWrite();
      },
    ]);
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "downgrade_write of 'mmap_lock' by task 't0' on CPU 0, which does not hold it for writing",
    );
  });
});

describe('RangeLock checks', () => {
  it.each([
    [5, 5],
    [6, 5],
    [-1, 5],
    [Number.NaN, 5],
    [0, Number.NaN],
  ])('refuses the bad range [%s, %s) for every operation', (start, end) => {
    const lock = new RangeLock('l', { lockdep: false });
    const msg = `range lock 'l': bad range [${start}, ${end}); need 0 <= start < end`;
    for (const op of [lock.readLock, lock.writeLock, lock.readTrylock, lock.writeTrylock]) {
      expect(() => runSync(op.call(lock, start, end))).toThrow(LockError);
      expect(() => runSync(op.call(lock, start, end))).toThrow(msg);
    }
    expect(lock.waiting()).toBe(0);
  });

  it('accepts a range starting at 0', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const h = runSync(lock.writeLock(0, 1));
    expect(h.start).toBe(0);
    runSync(lock.unlock(h));
    expect(lock.isLocked()).toBe(false);
  });

  it('reports unlocking a range twice, and downgrading a read range or a released one', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const h = runSync(lock.writeLock(0, 10));
    runSync(lock.unlock(h));
    expect(() => runSync(lock.unlock(h))).toThrow(
      "range unlock of [0, 10) on 'l' by task 'sync' on CPU 0, but that range is not held (already unlocked, or from another lock)",
    );
    expect(() => runSync(lock.downgrade(h))).toThrow(
      "range downgrade of [0, 10) on 'l' by task 'sync' on CPU 0, which does not hold it for writing",
    );
    const rd = runSync(lock.readLock(0, 10));
    expect(() => runSync(lock.downgrade(rd))).toThrow(
      /range downgrade of \[0, 10\) on 'l' .* does not hold it for writing/,
    );
    // A forged handle was never in the tree.
    const forged: RangeLockHandle = { start: 0, end: 10, kind: 'read', seqnum: 0 };
    expect(() =>
      runSync(lock.unlock({ ...forged, held: true, released: false, node: null } as never)),
    ).toThrow(/that range is not held/);
  });

  it('names the holders in a deadlock report', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const r = run([
      function* () {
        yield* lock.writeLock(0, 10);
        yield* lock.readLock(5, 6);
      },
    ]);
    expect(r.failure?.kind).toBe('deadlock');
    expect(r.failure?.message).toContain("t0 on CPU 0 sleeps on 'l' (held by write [0, 10))");
  });
});

describe('RangeLock and lockdep', () => {
  it('is held while the task holds any range of it, and released with the last one', () => {
    const lock = new RangeLock('mm');
    const held: string[][] = [];
    const r = run([
      function* () {
        const c = yield* current();
        const a = yield* lock.readLock(0, 10);
        const b = yield* lock.writeLock(20, 30);
        held.push([...defaultLockdep.heldBy(c)]);
        yield* lock.unlock(a);
        held.push([...defaultLockdep.heldBy(c)]);
        yield* lock.unlock(b);
        held.push([...defaultLockdep.heldBy(c)]);
        const t = yield* lock.writeTrylock(0, 10);
        held.push([...defaultLockdep.heldBy(c)]);
        if (t) yield* lock.unlock(t);
        held.push([...defaultLockdep.heldBy(c)]);
      },
    ]);
    expect(r.failure).toBeNull();
    expect(held).toEqual([['mm'], ['mm'], [], ['mm'], []]);
  });

  it('counts holds per task: a second task holding a range of it is held by lockdep too', () => {
    const lock = new RangeLock('mm');
    const held: string[] = [];
    const r = run([
      function* () {
        const h = yield* lock.readLock(0, 10);
        yield* delay(5000);
        yield* lock.unlock(h);
      },
      function* () {
        const c = yield* current();
        const h = yield* lock.writeLock(20, 30);
        held.push(`in: ${defaultLockdep.heldBy(c).join(',')}`);
        yield* lock.unlock(h);
        held.push(`out: ${defaultLockdep.heldBy(c).join(',')}`);
      },
    ]);
    expect(r.failure).toBeNull();
    expect(held).toEqual(['in: mm', 'out: ']);
  });

  it('a trylock in an interrupt on an idle CPU is released again, for lockdep and for the whole-range methods', () => {
    // The per-CPU owner of an interrupt's holds must be the same object at lock and at unlock.
    const lock = new RangeLock('mm');
    const m = new Machine({ cpus: 2 });
    const seen: unknown[] = [];
    m.spawn(0, 't', function* () {
      yield* sendIpi([1], function* () {
        const c = yield* current();
        const h = yield* lock.readTrylock(0, 10);
        seen.push(defaultLockdep.heldBy(c).join(','));
        if (h) yield* lock.unlock(h);
        seen.push(defaultLockdep.heldBy(c).join(','));
        seen.push(yield* lock.downReadTrylock());
        yield* lock.upRead();
        seen.push(defaultLockdep.heldBy(c).join(','), lock.isLocked());
      });
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(seen).toEqual(['mm', '', true, '', false]);
  });

  it('counts holds per task, not per CPU: a second task on the same CPU holds it for lockdep too', () => {
    const lock = new RangeLock('mm');
    const other = new RangeLock('other', { lockdep: false });
    const held: string[] = [];
    const m = new Machine({ cpus: 2 });
    m.spawn(1, 'holder', function* () {
      const h = yield* other.writeLock(0, 1);
      yield* delay(5000);
      yield* other.unlock(h);
    });
    m.spawn(0, 'a', function* () {
      yield* delay(1000);
      const h = yield* lock.readLock(0, 10);
      const o = yield* other.readLock(0, 1); // sleeps: 'b' runs on this CPU meanwhile
      yield* other.unlock(o);
      yield* lock.unlock(h);
    });
    m.spawn(0, 'b', function* () {
      yield* delay(2000);
      const c = yield* current();
      const h = yield* lock.writeLock(20, 30);
      held.push(`b in: ${defaultLockdep.heldBy(c).join(',')}`);
      yield* lock.unlock(h);
      held.push(`b out: ${defaultLockdep.heldBy(c).join(',')}`);
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(held).toEqual(['b in: mm', 'b out: ']);
  });

  it('interrupts on two idle CPUs holding ranges at once each hold it for lockdep', () => {
    const lock = new RangeLock('mm');
    const m = new Machine({ cpus: 3 });
    const seen: string[] = [];
    m.spawn(0, 't', function* () {
      yield* sendIpi([1, 2], function* () {
        const c = yield* current();
        const h = yield* lock.readTrylock(c.cpu * 10, c.cpu * 10 + 5);
        yield* delay(1000);
        seen.push(`cpu ${c.cpu}: ${defaultLockdep.heldBy(c).join(',')}`);
        if (h) yield* lock.unlock(h);
      });
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(seen.sort()).toEqual(['cpu 1: mm', 'cpu 2: mm']);
  });

  it('records dependencies for a blocking range lock, not for a trylock', () => {
    const outer = new SpinLock('outer');
    const lock = new RangeLock('mm', { lockClass: 'mm_class' });
    expect(lock.lockClass).toBe('mm_class');
    expect(new RangeLock('x').lockClass).toBe('x');
    const r = run([
      function* () {
        const h = yield* lock.readLock(0, 10);
        yield* outer.lock();
        yield* outer.unlock();
        yield* lock.unlock(h);
        yield* outer.lock();
        const t = yield* lock.readTrylock(0, 10);
        if (t) yield* lock.unlock(t);
        yield* outer.unlock();
      },
    ]);
    expect(r.failure).toBeNull();
    expect(defaultLockdep.hasDependency('mm_class', 'outer')).toBe(true);
    expect(defaultLockdep.hasDependency('outer', 'mm_class')).toBe(false);
  });

  it('a blocking range lock taken under another lock records that dependency; a trylock does not; the tree lock is not tracked', () => {
    const outer = new RwSemaphore('outer');
    const lock = new RangeLock('mm');
    const r = run([
      function* () {
        yield* outer.downWrite();
        const t = yield* lock.readTrylock(0, 10);
        if (t) yield* lock.unlock(t);
        yield* outer.upWrite();
      },
    ]);
    expect(r.failure).toBeNull();
    expect(defaultLockdep.edgeCount).toBe(0);
    const r2 = run([
      function* () {
        yield* outer.downWrite();
        const h = yield* lock.writeLock(0, 10);
        yield* lock.unlock(h);
        yield* outer.upWrite();
      },
    ]);
    expect(r2.failure).toBeNull();
    expect(defaultLockdep.hasDependency('outer', 'mm')).toBe(true);
    expect(defaultLockdep.edgeCount).toBe(1);
  });

  it('down_write_nested takes a second lock of the class under a subclass; a plain down_write is recursive locking', () => {
    // dup_mmap(): the parent's mmap_lock is held while the child's is write-locked with SINGLE_DEPTH_NESTING.
    const parent = new RangeLock('parent', { lockClass: 'mm->mmap_lock' });
    const child = new RangeLock('child', { lockClass: 'mm->mmap_lock' });
    const held: string[][] = [];
    let whole = '';
    const r = run([
      function* () {
        const c = yield* current();
        yield* parent.downWrite();
        yield* child.downWriteNested(1);
        held.push([...defaultLockdep.heldBy(c)]);
        whole = child.describeHolders();
        yield* child.upWrite();
        held.push([...defaultLockdep.heldBy(c)]);
        yield* parent.upWrite();
      },
    ]);
    expect(r.failure).toBeNull();
    expect(held).toEqual([['parent', 'child'], ['parent']]);
    expect(whole).toBe('write [0, Infinity)');
    expect(child.isLocked()).toBe(false);
    expect(defaultLockdep.hasDependency('mm->mmap_lock', 'mm->mmap_lock/1')).toBe(true);
    const r2 = run([
      function* () {
        yield* parent.downWrite();
        yield* child.downWrite();
      },
    ]);
    expect(r2.failure?.kind).toBe('lockdep');
    expect(r2.failure?.message).toMatch(
      /possible recursive locking detected: .* 'child' \(class mm->mmap_lock\)/,
    );
  });

  it('reports a blocking range lock in atomic context, and reports to the validator it was given', () => {
    const spin = new SpinLock('ptl');
    const lock = new RangeLock('mm');
    const r = run([
      function* () {
        yield* spin.lock();
        yield* lock.readLock(0, 10);
      },
    ]);
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/sleeping function called from invalid context: .* 'mm'/);
    const ld = new Lockdep();
    const own = new RangeLock('own', { lockdep: ld });
    let held: readonly string[] = [];
    const r2 = run([
      function* () {
        const h = yield* own.writeLock(0, 1);
        held = ld.heldBy(yield* current());
        yield* own.unlock(h);
      },
    ]);
    expect(r2.failure).toBeNull();
    expect(held).toEqual(['own']);
  });
});
