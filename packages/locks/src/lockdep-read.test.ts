import { delay, type Kernel, Machine } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current } from './current.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { RwSemaphore } from './rwsem.js';
import { SpinLock } from './spinlock.js';

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

/** Runs `bodies` one after the other on CPUs 0, 1, ... (each starts 100 µs after the previous). */
function runApart(...bodies: Array<() => Kernel<void>>) {
  const m = new Machine({ cpus: bodies.length });
  bodies.forEach((body, i) => {
    m.spawn(i, `task${i}`, function* () {
      yield* delay(100_000 * i);
      yield* body();
    });
  });
  return m.run();
}

/**
 * Lockdep and read (shared) acquisitions. rw_semaphore readers are non-recursive (a second down_read waits
 * behind a queued writer), so kernel/locking/lockdep.c treats a down_read like a write for dependencies and
 * recursion: a read acquisition records edges and closes cycles like any other.
 */
describe('lockdep: read-side dependencies', () => {
  it('down_read(A) then spin_lock(B) records the dependency A -> B', () => {
    const a = new RwSemaphore('mmap_lock');
    const b = new SpinLock('ptl');
    const res = runApart(function* () {
      yield* a.downRead();
      yield* b.lock();
      yield* b.unlock();
      yield* a.upRead();
    });
    expect(res.failure).toBeNull();
    expect(defaultLockdep.hasDependency('mmap_lock', 'ptl')).toBe(true);
    expect(defaultLockdep.hasDependency('ptl', 'mmap_lock')).toBe(false);
    expect(defaultLockdep.edgeCount).toBe(1);
  });

  it('reports an inversion whose first order was taken for reading (read A -> B, then B -> write A)', () => {
    const a = new RwSemaphore('mmap_lock');
    const b = new RwSemaphore('i_mmap_rwsem');
    const res = runApart(
      function* () {
        yield* a.downRead();
        yield* b.downWrite();
        yield* b.upWrite();
        yield* a.upRead();
      },
      function* () {
        yield* b.downWrite();
        yield* a.downWrite();
        yield* a.upWrite();
        yield* b.upWrite();
      },
    );
    expect(res.failure?.kind).toBe('lockdep');
    expect(res.failure?.message).toMatch(/circular locking dependency.*'mmap_lock' \(class mmap_lock\)/s);
  });

  it('reports a read/read inversion between two rw_semaphores (non-recursive readers can deadlock)', () => {
    const a = new RwSemaphore('A');
    const b = new RwSemaphore('B');
    const res = runApart(
      function* () {
        yield* a.downRead();
        yield* b.downRead();
        yield* b.upRead();
        yield* a.upRead();
      },
      function* () {
        yield* b.downRead();
        yield* a.downRead();
        yield* a.upRead();
        yield* b.upRead();
      },
    );
    expect(res.failure?.kind).toBe('lockdep');
    expect(res.failure?.message).toMatch(/circular locking dependency/);
    expect(res.failure?.message).toContain("'A' -> 'B'");
  });

  it('reports a second down_read of the same rw_semaphore by one task as recursive locking', () => {
    const a = new RwSemaphore('mmap_lock');
    const res = runApart(function* () {
      yield* a.downRead();
      yield* a.downRead();
    });
    expect(res.failure?.kind).toBe('lockdep');
    expect(res.failure?.message).toMatch(/possible recursive locking detected: .*'mmap_lock'/);
  });

  it('a successful down_read_trylock adds no dependency (a trylock cannot deadlock), but is held', () => {
    const a = new SpinLock('outer');
    const b = new RwSemaphore('inner');
    let held: readonly string[] = [];
    const res = runApart(function* () {
      yield* a.lock();
      expect(yield* b.downReadTrylock()).toBe(true);
      held = defaultLockdep.heldBy(yield* current());
      yield* a.unlock();
      yield* b.upRead();
    });
    expect(res.failure).toBeNull();
    expect(defaultLockdep.hasDependency('outer', 'inner')).toBe(false);
    expect(held).toEqual(['outer', 'inner']);
  });

  it('downgrade_write keeps the lock held, for reading: up_read then balances it and dependencies still count', () => {
    const a = new RwSemaphore('mmap_lock');
    const b = new RwSemaphore('i_mmap_rwsem');
    const res = runApart(
      function* () {
        yield* a.downWrite();
        yield* a.downgradeWrite();
        yield* b.downWrite();
        yield* b.upWrite();
        yield* a.upRead();
      },
      function* () {
        yield* b.downWrite();
        yield* a.downRead();
      },
    );
    expect(defaultLockdep.hasDependency('mmap_lock', 'i_mmap_rwsem')).toBe(true);
    expect(res.failure?.kind).toBe('lockdep');
    expect(res.failure?.message).toMatch(/circular locking dependency/);
  });

  it('downgrade of a lock the task does not hold is reported, naming the lock', () => {
    const ld = new Lockdep();
    const a = new RwSemaphore('mmap_lock', { lockdep: ld });
    expect(() => ld.downgrade(a, { cpu: 0, task: null })).toThrow(
      /downgrade of 'mmap_lock' by .* which does not hold it for writing/,
    );
  });
});
