import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { block, wake } from './effects.js';
import { Machine } from './machine.js';
import { WaitQueue } from './wait-queue.js';

describe('WaitQueue', () => {
  it('starts empty, without a holder description', () => {
    const wq = new WaitQueue('mm->mmap_lock');
    expect(wq.label).toBe('mm->mmap_lock');
    expect(wq.sleepers).toEqual([]);
    expect(wq.describe).toBeUndefined();
  });

  it('a wake on an empty queue wakes nobody', () => {
    const m = new Machine({ cpus: 1, trace: true });
    const wq = new WaitQueue('empty');
    m.spawn(0, 'waker', function* () {
      yield* wake(wq, Number.POSITIVE_INFINITY);
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(r.trace?.map((e) => e.label)).toContain('empty (0)');
    expect(wq.sleepers).toEqual([]);
  });

  it('sleepers queue oldest first and wake in FIFO order, `count` at a time', () => {
    const m = new Machine({ cpus: 1 });
    const wq = new WaitQueue('fifo');
    const order: string[] = [];
    const queued: string[][] = [];
    for (const name of ['A', 'B', 'C']) {
      m.spawn(0, name, function* () {
        yield* block(wq);
        order.push(name);
      });
    }
    m.spawn(0, 'waker', function* () {
      queued.push(wq.sleepers.map((t) => t.name));
      yield* wake(wq);
      queued.push(wq.sleepers.map((t) => t.name));
      yield* wake(wq, 2);
      queued.push(wq.sleepers.map((t) => t.name));
    });
    expect(m.run().failure).toBeNull();
    expect(queued).toEqual([['A', 'B', 'C'], ['B', 'C'], []]);
    expect(order).toEqual(['A', 'B', 'C']);
  });

  it('a deadlock report names the queue and, when set, what `describe` says holds it', () => {
    const run = (describeHolder: boolean) => {
      const m = new Machine({ cpus: 1 });
      const owner = new Cell('T9', 'owner');
      const wq = new WaitQueue('lock X');
      if (describeHolder) wq.describe = () => owner.value;
      m.spawn(0, 'T0', function* () {
        yield* block(wq);
      });
      return m.run().failure;
    };
    expect(run(true)?.kind).toBe('deadlock');
    expect(run(true)?.message).toMatch(/T0 on CPU 0 sleeps on 'lock X' \(held by T9\)/);
    expect(run(false)?.message).toMatch(/T0 on CPU 0 sleeps on 'lock X'$/);
  });
});
