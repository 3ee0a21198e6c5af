import { delay, localIrqDisable, localIrqEnable, Machine, runSync, sendIpi } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current } from './current.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { Mutex } from './mutex.js';
import { SpinLock } from './spinlock.js';

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

/** struct mutex's operations one at a time (kernel/locking/mutex.c): the owner word, the wait list, lockdep. */
describe('mutex operations', () => {
  it('a free mutex is taken and released with the owner word alone: no flag is left set', () => {
    const m = new Machine({ cpus: 1 });
    const mutex = new Mutex('m');
    m.spawn(0, 't', function* () {
      yield* mutex.lock();
      const me = (yield* current()).task;
      expect(mutex.owner.value).toEqual({ task: me, waiters: false, handoff: false, pickup: false });
      yield* mutex.unlock();
      expect(mutex.owner.value).toEqual({ task: null, waiters: false, handoff: false, pickup: false });
    });
    expect(m.run().failure).toBeNull();
  });

  it('a waiter sets MUTEX_FLAG_WAITERS; the last waiter to take the mutex clears it, so the next unlock is the fast one', () => {
    const m = new Machine({ cpus: 2 });
    const mutex = new Mutex('m');
    const flags: Array<[string, boolean, boolean]> = [];
    const snap = (at: string) => flags.push([at, mutex.owner.value.waiters, mutex.isLocked()]);
    m.spawn(0, 'holder', function* () {
      yield* mutex.lock();
      yield* delay(5_000);
      snap('holder unlocks');
      yield* mutex.unlock();
    });
    m.spawn(1, 'waiter', function* () {
      yield* delay(1_000);
      yield* mutex.lock();
      snap('waiter holds');
      yield* mutex.unlock();
      snap('waiter unlocked');
    });
    expect(m.run().failure).toBeNull();
    expect(flags).toEqual([
      ['holder unlocks', true, true],
      ['waiter holds', false, true],
      ['waiter unlocked', false, false],
    ]);
  });

  it('unlock by a task that does not own it names the owner', () => {
    const m = new Machine({ cpus: 2 });
    const mutex = new Mutex('cred_guard');
    m.spawn(0, 'owner', function* () {
      yield* mutex.lock();
      yield* delay(10_000);
    });
    m.spawn(1, 'thief', function* () {
      yield* delay(1_000);
      yield* mutex.unlock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lock');
    expect(r.failure?.message).toBe(
      "mutex_unlock of 'cred_guard' by task 'thief' on CPU 1, but it is held by task 'owner' on CPU 0; only the owner may unlock",
    );
    expect(mutex.isLocked()).toBe(true);
  });

  it('a deadlock report names the task holding the mutex', () => {
    const m = new Machine({ cpus: 2 });
    const a = new Mutex('a', { lockdep: false });
    const b = new Mutex('b', { lockdep: false });
    m.spawn(0, 'ab', function* () {
      yield* a.lock();
      yield* delay(1_000);
      yield* b.lock();
    });
    m.spawn(1, 'ba', function* () {
      yield* b.lock();
      yield* delay(1_000);
      yield* a.lock();
    });
    const msg = m.run().failure?.message ?? '';
    expect(msg).toContain("(held by task 'ab' on CPU 0)");
    expect(msg).toContain("(held by task 'ba' on CPU 1)");
  });

  it('mutex_lock is a sleeping acquisition for lockdep: checked by might_sleep and recorded with its dependencies', () => {
    const ld = new Lockdep();
    const spin = new SpinLock('spin', { lockdep: ld });
    const outer = new Mutex('outer', { lockdep: ld });
    const inner = new Mutex('inode', { lockdep: ld, lockClass: 'i_rwsem' });
    const m = new Machine({ cpus: 1 });
    let held: readonly string[] = [];
    m.spawn(0, 't', function* () {
      yield* outer.lock();
      yield* inner.lock();
      held = ld.heldBy(yield* current());
      yield* inner.unlock();
      yield* outer.unlock();
      expect(ld.heldBy(yield* current())).toEqual([]);
    });
    expect(m.run().failure).toBeNull();
    expect(held).toEqual(['outer', 'inode']);
    expect(ld.hasDependency('outer', 'i_rwsem')).toBe(true);

    const bad = new Machine({ cpus: 1 });
    bad.spawn(0, 't', function* () {
      yield* spin.lock();
      yield* outer.lock();
    });
    expect(bad.run().failure?.message).toMatch(/takes sleeping lock 'outer' while holding spinlock 'spin'/);
    const irqsOff = new Machine({ cpus: 1 });
    irqsOff.spawn(0, 't', function* () {
      yield* localIrqDisable();
      yield* outer.lock();
      yield* localIrqEnable();
    });
    expect(irqsOff.run().failure?.message).toMatch(/takes sleeping lock 'outer' with interrupts disabled/);
  });

  it('a successful mutex_trylock is held for lockdep but adds no dependency; a failed one is not held', () => {
    const ld = new Lockdep();
    const outer = new Mutex('outer', { lockdep: ld });
    const inner = new Mutex('inner', { lockdep: ld });
    const m = new Machine({ cpus: 1 });
    const seen: Array<readonly string[]> = [];
    m.spawn(0, 't', function* () {
      yield* outer.lock();
      expect(yield* inner.trylock()).toBe(true);
      seen.push(ld.heldBy(yield* current()));
      expect(yield* inner.trylock()).toBe(false);
      seen.push(ld.heldBy(yield* current()));
      yield* inner.unlock();
      yield* outer.unlock();
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([
      ['outer', 'inner'],
      ['outer', 'inner'],
    ]);
    expect(ld.hasDependency('outer', 'inner')).toBe(false);
  });

  it('with lockdep off for the mutex, nothing is tracked; with the default, the default validator tracks it', () => {
    const off = new Mutex('off', { lockdep: false });
    const on = new Mutex('on');
    const m = new Machine({ cpus: 1 });
    const seen: Array<readonly string[]> = [];
    m.spawn(0, 't', function* () {
      yield* off.lock();
      seen.push(defaultLockdep.heldBy(yield* current()));
      yield* off.unlock();
      expect(yield* off.trylock()).toBe(true);
      seen.push(defaultLockdep.heldBy(yield* current()));
      yield* off.unlock();
      yield* on.lock();
      seen.push(defaultLockdep.heldBy(yield* current()));
      yield* on.unlock();
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([[], [], ['on']]);
  });

  it('trylock of a free mutex outside a machine succeeds once', () => {
    const mutex = new Mutex('m', { lockdep: false });
    expect(runSync(mutex.trylock())).toBe(true);
    expect(mutex.owner.value.task).not.toBeNull();
    expect(runSync(mutex.trylock())).toBe(false);
    runSync(mutex.unlock());
    expect(mutex.owner.value).toEqual({ task: null, waiters: false, handoff: false, pickup: false });
  });

  it('a woken first waiter that finds the mutex stolen sets HANDOFF; the next unlock hands it over (PICKUP)', () => {
    const m = new Machine({ cpus: 2 });
    const mutex = new Mutex('m', { lockdep: false });
    const log: string[] = [];
    const snap = (at: string) => {
      const o = mutex.owner.value;
      log.push(`${at}: ${o.task?.name ?? '-'} w${+o.waiters} h${+o.handoff} p${+o.pickup}`);
    };
    m.spawn(0, 'H', function* () {
      yield* mutex.lock();
      yield* delay(5_000);
      // Unlock and take it again at once: the woken waiter has not run yet, so H steals it back.
      yield* mutex.unlock();
      snap('H unlock');
      yield* mutex.lock();
      snap('H steals');
      yield* delay(1_000);
      snap('W woke and lost');
      yield* mutex.unlock(); // W set HANDOFF meanwhile: the mutex goes to W, not to whoever comes first
      snap('H hands off');
      yield* mutex.lock();
      snap('H again');
      yield* mutex.unlock();
    });
    m.spawn(1, 'W', function* () {
      yield* delay(1_000);
      yield* mutex.lock();
      snap('W picks up');
      yield* delay(500);
      yield* mutex.unlock();
    });
    expect(m.run().failure).toBeNull();
    expect(log).toEqual([
      'H unlock: - w1 h0 p0',
      'H steals: H w1 h0 p0',
      'W woke and lost: H w1 h1 p0',
      'H hands off: W w1 h0 p1',
      'W picks up: W w1 h0 p0',
      'H again: H w0 h0 p0',
    ]);
    expect(mutex.owner.value).toEqual({ task: null, waiters: false, handoff: false, pickup: false });
  });

  it('uncontended mutex_lock and mutex_unlock are one atomic on the owner word each (the fast paths)', () => {
    const m = new Machine({ cpus: 1, trace: true });
    const mutex = new Mutex('c', { lockdep: false });
    m.spawn(0, 't', function* () {
      yield* mutex.lock();
      yield* mutex.unlock();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    const effects = r
      .trace!.filter((e) => e.task === 't' && e.kind !== 'self')
      .map((e) => `${e.kind} ${e.label}`);
    expect(effects).toEqual(['rmw c', 'rmw c']);
  });

  it('a contended mutex: the wait_lock shares the owner’s line, the waiter sleeps as "<name> (mutex_lock)", and lockdep sees only the mutexes', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2, trace: true });
    const outer = new Mutex('outer', { lockdep: ld });
    const inner = new Mutex('inner', { lockdep: ld });
    m.spawn(0, 'holder', function* () {
      yield* inner.lock();
      yield* delay(5_000);
      yield* inner.unlock();
    });
    m.spawn(1, 'waiter', function* () {
      yield* delay(1_000);
      yield* outer.lock();
      yield* inner.lock();
      yield* inner.unlock();
      yield* outer.unlock();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    const memory = r.trace!.filter((e) => ['read', 'write', 'rmw'].includes(e.kind));
    expect(new Set(memory.map((e) => e.label))).toEqual(new Set(['outer', 'inner']));
    expect(
      r.trace!.some((e) => e.task === 'waiter' && e.kind === 'block' && e.label === 'inner (mutex_lock)'),
    ).toBe(true);
    expect(ld.edgeCount).toBe(1);
    expect(ld.hasDependency('outer', 'inner')).toBe(true);
  });

  it('mutex_unlock of a free mutex in an interrupt on an idle CPU is reported too', () => {
    const m = new Machine({ cpus: 2 });
    const mutex = new Mutex('m', { lockdep: false });
    m.spawn(0, 't', function* () {
      yield* sendIpi([1], function* () {
        yield* mutex.unlock();
      });
    });
    expect(m.run().failure?.message).toBe(
      "mutex_unlock of 'm' by an interrupt on idle CPU 1, but it is not locked; only the owner may unlock",
    );
  });
});
