import { delay, type Kernel, localIrqDisable, localIrqEnable, Machine, sendIpi } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { Mutex } from './mutex.js';
import { RwSemaphore } from './rwsem.js';
import { SpinLock } from './spinlock.js';

beforeEach(() => {
  defaultLockdep.reset();
  defaultLockdep.enabled = true;
});

function* nested(outer: { lock(): Kernel<void>; unlock(): Kernel<void> }, inner: typeof outer): Kernel<void> {
  yield* outer.lock();
  yield* inner.lock();
  yield* inner.unlock();
  yield* outer.unlock();
}

/** Task 1 takes A then B; much later, task 2 takes B then A. The two never overlap: no deadlock happens. */
function abba(ld: Lockdep | false) {
  const m = new Machine({ cpus: 2 });
  const a = new SpinLock('mm->page_table_lock', { lockdep: ld });
  const b = new SpinLock('pte_lockptr', { lockdep: ld });
  m.spawn(0, 'fault', () => nested(a, b));
  m.spawn(1, 'munmap', function* () {
    yield* delay(100_000);
    yield* nested(b, a);
  });
  return m.run();
}

describe('lockdep', () => {
  it('reports an ABBA inversion from a run in which the deadlock never happened', () => {
    expect(abba(false).failure).toBeNull(); // without lockdep the run completes: no deadlock occurred
    const r = abba(new Lockdep());
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.cpu).toBe(1);
    expect(r.failure?.message).toMatch(/circular locking dependency/);
    expect(r.failure?.message).toMatch(
      /'pte_lockptr' \(class pte_lockptr\) while holding .*'mm->page_table_lock'|acquires 'mm->page_table_lock'/,
    );
    expect(r.failure?.message).toMatch(/task 'fault' on CPU 0/);
  });

  it('finds longer cycles (A -> B -> C -> A) across tasks and lock kinds', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 3 });
    const a = new Mutex('A', { lockdep: ld });
    const b = new Mutex('B', { lockdep: ld });
    const c = new RwSemaphore('C', { lockdep: ld });
    const cw = { lock: () => c.downWrite(), unlock: () => c.upWrite() };
    m.spawn(0, 't0', () => nested(a, b));
    m.spawn(1, 't1', function* () {
      yield* delay(10_000);
      yield* nested(b, cw);
    });
    m.spawn(2, 't2', function* () {
      yield* delay(20_000);
      yield* nested(cw, a);
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/'A' -> 'B'[\s\S]*'B' -> 'C'/);
  });

  it('is silent when off (benchmarks)', () => {
    defaultLockdep.enabled = false;
    expect(abba(undefined as unknown as false).failure).toBeNull();
    expect(defaultLockdep.edgeCount).toBe(0);
  });

  it('reports recursive locking of one class, unless a nesting subclass says the order is fixed', () => {
    const ld = new Lockdep();
    const run = (useNested: boolean) => {
      const m = new Machine({ cpus: 1 });
      const old = new RwSemaphore('mmap_lock', { lockdep: ld });
      const child = new RwSemaphore('mmap_lock', { lockdep: ld });
      m.spawn(0, 'fork', function* () {
        yield* old.downWrite();
        if (useNested) yield* child.downWriteNested(1);
        else yield* child.downWrite();
        yield* child.upWrite();
        yield* old.upWrite();
      });
      return m.run();
    };
    const r = run(false);
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(
      /possible recursive locking detected: task 'fork' on CPU 0 .* 'mmap_lock'/,
    );
    expect(run(true).failure).toBeNull();
  });

  it('reports taking a sleeping lock with a spinlock held or interrupts off', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2 });
    const spin = new SpinLock('ptl', { lockdep: ld });
    const sem = new RwSemaphore('mmap_lock', { lockdep: ld });
    m.spawn(0, 'bad', function* () {
      yield* spin.lock();
      yield* sem.downRead(); // never actually sleeps: the lock is free
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/takes sleeping lock 'mmap_lock' while holding spinlock 'ptl'/);

    const m2 = new Machine({ cpus: 1 });
    const mx = new Mutex('m', { lockdep: ld });
    m2.spawn(0, 'irqoff', function* () {
      yield* localIrqDisable();
      yield* mx.lock();
    });
    expect(m2.run().failure?.message).toMatch(/with interrupts disabled/);
  });

  it('reports a class used in hard-irq context and elsewhere with interrupts on', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2 });
    const lock = new SpinLock('tlb_lock', { lockdep: ld });
    m.spawn(0, 'task', function* () {
      yield* lock.lock(); // interrupts on: irq-unsafe use
      yield* lock.unlock();
      yield* delay(50_000);
    });
    m.spawn(1, 'sender', function* () {
      yield* delay(10_000);
      yield* sendIpi(
        [0],
        ld.hardirq(function* () {
          yield* lock.lock();
          yield* lock.unlock();
        }),
      );
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/inconsistent lock state: class tlb_lock .*hard-irq/);
  });

  it('accepts an irq-safe lock taken with irqsave outside interrupts', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2 });
    const lock = new SpinLock('tlb_lock', { lockdep: ld });
    m.spawn(0, 'task', function* () {
      const f = yield* lock.lockIrqsave();
      yield* lock.unlockIrqrestore(f);
      yield* delay(50_000);
    });
    m.spawn(1, 'sender', function* () {
      yield* delay(10_000);
      yield* sendIpi(
        [0],
        ld.hardirq(function* () {
          yield* lock.lock();
          yield* lock.unlock();
        }),
      );
    });
    expect(m.run().failure).toBeNull();
  });

  it('reports an irq-safe lock that depends on an irq-unsafe one', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2 });
    const safe = new SpinLock('safe', { lockdep: ld });
    const unsafe = new SpinLock('unsafe', { lockdep: ld });
    m.spawn(0, 'task', function* () {
      yield* unsafe.lock(); // irqs on: unsafe is irq-unsafe
      yield* unsafe.unlock();
      yield* localIrqDisable();
      yield* safe.lock();
      yield* unsafe.lock(); // safe -> unsafe, with safe used in hard irq below
      yield* unsafe.unlock();
      yield* safe.unlock();
      yield* localIrqEnable();
      yield* delay(50_000);
    });
    m.spawn(1, 'sender', function* () {
      yield* delay(10_000);
      yield* sendIpi(
        [0],
        ld.hardirq(function* () {
          yield* safe.lock();
          yield* safe.unlock();
        }),
      );
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/irq-safe -> irq-unsafe lock order detected/);
  });

  it('reports releasing a lock the task does not hold (bad unlock balance)', () => {
    const ld = new Lockdep();
    const m = new Machine({ cpus: 2 });
    const sem = new RwSemaphore('s', { lockdep: ld });
    m.spawn(0, 'a', function* () {
      yield* sem.downRead();
      yield* delay(10_000);
    });
    m.spawn(1, 'b', function* () {
      yield* delay(1000);
      yield* sem.upRead();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('lockdep');
    expect(r.failure?.message).toMatch(/bad unlock balance detected: task 'b' on CPU 1 releases 's'/);
  });
});
