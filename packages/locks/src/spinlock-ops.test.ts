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
    const run = (irqsOff: boolean, how: 'lock' | 'lockNested' | 'lockIrq' | 'lockIrqsave' = 'lock') => {
      const ld = new Lockdep();
      const m = new Machine({ cpus: 2 });
      const l = new SpinLock('timer_lock', { lockdep: ld });
      m.spawn(0, 'task', function* () {
        if (irqsOff) yield* localIrqDisable();
        if (how === 'lockNested') yield* l.lockNested(0);
        else if (how === 'lockIrqsave') yield* l.lockIrqsave();
        else yield* l[how]();
        yield* l.unlock();
        yield* localIrqEnable();
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
    // spin_lock_nested() reads the interrupt state as spin_lock() does (subclass 0 is the class itself).
    expect(run(true, 'lockNested').failure).toBeNull();
    expect(run(false, 'lockNested').failure?.message).toMatch(/inconsistent lock state: class timer_lock/);
    // spin_lock_irq() and spin_lock_irqsave() hold the lock with interrupts off, whatever the state before:
    // the class stays irq-safe-only.
    expect(run(false, 'lockIrq').failure).toBeNull();
    expect(run(false, 'lockIrqsave').failure).toBeNull();
  });

  it('every operation works in an interrupt on an idle CPU (no task) and on a lock without lockdep', () => {
    for (const lockdep of [undefined, false] as const) {
      const m = new Machine({ cpus: 2 });
      const l = new SpinLock('l', lockdep === false ? { lockdep } : {});
      const busy = new SpinLock('busy', lockdep === false ? { lockdep } : {});
      const seen: unknown[] = [];
      const ops = function* (inIrq: boolean): Kernel<void> {
        seen.push(yield* busy.trylock(), busy.isLocked());
        yield* l.lockNested(1);
        yield* l.unlock();
        if (!inIrq) {
          // spin_unlock_irq() would turn interrupts on inside the handler.
          yield* l.lockIrq();
          yield* l.unlockIrq();
        }
        const flags = yield* l.lockIrqsave();
        yield* l.unlockIrqrestore(flags);
        seen.push(yield* l.trylock());
        yield* l.unlock();
        seen.push(l.isLocked());
      };
      m.spawn(0, 'holder', function* () {
        yield* busy.lock();
        yield* sendIpi([1], () => ops(true));
        yield* busy.unlock();
        // The same operations in a task, with lockdep on or off.
        yield* ops(false);
        yield* busy.unlock();
      });
      expect(m.run().failure, `lockdep ${lockdep}`).toBeNull();
      expect(seen, `lockdep ${lockdep}`).toEqual([false, true, true, false, true, true, true, false]);
    }
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
