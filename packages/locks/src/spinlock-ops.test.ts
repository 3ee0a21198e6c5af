import { delay, type Kernel, localIrqDisable, localIrqEnable, Machine, runSync, sendIpi } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current, irqsEnabled } from './current.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { RawSpinLock, SpinLock } from './spinlock.js';

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

/** The preempt count of the running task. */
function* preemptCount(): Kernel<number> {
  return (yield* current()).task?.preemptCount ?? -1;
}

/** The spinlock's operations one at a time: ticket arithmetic, preemption, interrupts and lockdep bookkeeping. */
describe('spinlock operations', () => {
  it('arch_spin_lock hands out tickets in order; arch_spin_unlock serves the next', () => {
    const l = new RawSpinLock('l', { lockdep: false });
    expect(runSync(l.archSpinLock())).toBe(0);
    expect(l.isLocked()).toBe(true);
    runSync(l.archSpinUnlock());
    expect(l.isLocked()).toBe(false);
    expect(runSync(l.archSpinLock())).toBe(1);
    runSync(l.archSpinUnlock());
    expect([l.next.value, l.owner.value]).toEqual([2, 2]);
  });

  it('arch_spin_trylock takes no ticket when the lock is held', () => {
    const l = new RawSpinLock('l', { lockdep: false });
    expect(runSync(l.archSpinTrylock())).toBe(true);
    expect(runSync(l.archSpinTrylock())).toBe(false);
    expect([l.next.value, l.owner.value]).toEqual([1, 0]);
  });

  it('lock and unlock raise and drop the preempt count; a failed trylock leaves it as it was', () => {
    const m = new Machine({ cpus: 1 });
    const l = new SpinLock('l');
    const seen: number[] = [];
    m.spawn(0, 't', function* () {
      seen.push(yield* preemptCount());
      yield* l.lock();
      seen.push(yield* preemptCount());
      expect(yield* l.trylock()).toBe(false);
      seen.push(yield* preemptCount());
      yield* l.unlock();
      seen.push(yield* preemptCount());
      expect(yield* l.trylock()).toBe(true);
      seen.push(yield* preemptCount());
      yield* l.unlock();
      yield* l.lockNested(1);
      seen.push(yield* preemptCount());
      yield* l.unlock();
      seen.push(yield* preemptCount());
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([0, 1, 1, 0, 1, 1, 0]);
  });

  it('holderName names the holder while held and null after', () => {
    const m = new Machine({ cpus: 2 });
    const l = new SpinLock('l');
    const names: Array<string | null> = [];
    m.spawn(1, 'owner', function* () {
      yield* l.lock();
      names.push(l.holderName());
      yield* l.unlock();
      names.push(l.holderName());
    });
    expect(m.run().failure).toBeNull();
    expect(names).toEqual(["task 'owner' on CPU 1", null]);
  });

  it('a trylock is recorded as held by lockdep but adds no dependency', () => {
    const m = new Machine({ cpus: 1 });
    const outer = new SpinLock('outer');
    const inner = new SpinLock('inner');
    let held: readonly string[] = [];
    m.spawn(0, 't', function* () {
      yield* outer.lock();
      expect(yield* inner.trylock()).toBe(true);
      held = defaultLockdep.heldBy(yield* current());
      yield* inner.unlock();
      yield* outer.unlock();
      held = [...held, ...defaultLockdep.heldBy(yield* current())];
    });
    expect(m.run().failure).toBeNull();
    expect(held).toEqual(['outer', 'inner']);
    expect(defaultLockdep.hasDependency('outer', 'inner')).toBe(false);
  });

  it('lock, lockIrq, lockIrqsave and lockNested each record the nesting dependency', () => {
    for (const how of ['lock', 'lockIrq', 'lockIrqsave', 'lockNested'] as const) {
      const ld = new Lockdep();
      const a = new SpinLock('a', { lockdep: ld });
      const b = new SpinLock('b', { lockdep: ld });
      const m = new Machine({ cpus: 1 });
      m.spawn(0, 't', function* () {
        yield* a.lock();
        if (how === 'lockNested') yield* b.lockNested(1);
        else if (how === 'lockIrqsave') yield* b.lockIrqsave();
        else yield* b[how]();
        expect(ld.heldBy(yield* current())).toEqual(['a', 'b']);
        yield* b.unlock();
        yield* a.unlock();
        yield* localIrqEnable();
      });
      expect(m.run().failure, how).toBeNull();
      expect(ld.hasDependency('a', how === 'lockNested' ? 'b/1' : 'b'), how).toBe(true);
    }
  });

  it('lockNested with a subclass is not recursion; lock of the same class is', () => {
    const ok = new Machine({ cpus: 1 });
    const p = new SpinLock('pte', { lockClass: 'ptl' });
    const q = new SpinLock('pte2', { lockClass: 'ptl' });
    ok.spawn(0, 't', function* () {
      yield* p.lock();
      yield* q.lockNested(1);
      yield* q.unlock();
      yield* p.unlock();
    });
    expect(ok.run().failure).toBeNull();
    defaultLockdep.reset();
    const bad = new Machine({ cpus: 1 });
    bad.spawn(0, 't', function* () {
      yield* p.lock();
      yield* q.lock();
    });
    expect(bad.run().failure?.message).toMatch(/possible recursive locking detected/);
  });

  it('lock() with interrupts off does not mark the class irq-unsafe; with them on it does', () => {
    const run = (irqsOff: boolean) => {
      const ld = new Lockdep();
      const m = new Machine({ cpus: 2 });
      const l = new SpinLock('timer_lock', { lockdep: ld });
      m.spawn(0, 'task', function* () {
        if (irqsOff) yield* localIrqDisable();
        yield* l.lock();
        yield* l.unlock();
        if (irqsOff) yield* localIrqEnable();
        yield* delay(50_000);
      });
      m.spawn(1, 'sender', function* () {
        yield* delay(10_000);
        yield* sendIpi(
          [0],
          ld.hardirq(function* () {
            yield* l.lock();
            yield* l.unlock();
          }),
        );
      });
      return m.run();
    };
    expect(run(true).failure).toBeNull();
    expect(run(false).failure?.message).toMatch(/inconsistent lock state: class timer_lock/);
  });

  it('lockIrq turns interrupts off and unlockIrq back on', () => {
    const m = new Machine({ cpus: 1 });
    const l = new SpinLock('l');
    const seen: boolean[] = [];
    m.spawn(0, 't', function* () {
      yield* l.lockIrq();
      seen.push(yield* irqsEnabled(), l.isLocked());
      yield* l.unlockIrq();
      seen.push(yield* irqsEnabled(), l.isLocked());
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([false, true, true, false]);
  });

  it('unlock reports a missing lock naming the lock, and a wrong holder naming both', () => {
    const m = new Machine({ cpus: 1 });
    const l = new SpinLock('pte_lock', { lockdep: false });
    m.spawn(0, 'bad', function* () {
      yield* l.unlock();
    });
    expect(m.run().failure?.message).toBe(
      "spin_unlock of 'pte_lock' by task 'bad' on CPU 0, but the lock is not held; every unlock needs a matching lock",
    );
  });
});
