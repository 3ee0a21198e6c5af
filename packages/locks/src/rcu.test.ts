import {
  block,
  Cell,
  delay,
  type Kernel,
  kassert,
  Machine,
  now,
  runSync,
  type Scenario,
  sendIpi,
  WaitQueue,
} from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep } from './lockdep.js';
import { current } from './current.js';
import { Rcu, RcuError } from './rcu.js';
import { RcuBox } from './rcu-object.js';
import { expectCaught, exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

/**
 * Readers look up `gp` under rcu_read_lock and read the object twice; the updater replaces it and frees
 * the old one with kfree_rcu (or synchronize_rcu + free). With `late`, the reader uses its pointer after
 * rcu_read_unlock (the broken reader).
 */
function lookup(opts: { late?: boolean; free: 'kfree_rcu' | 'synchronize'; readers?: number }): Scenario {
  const readers = opts.readers ?? 1;
  return {
    cpus: readers + 1,
    setup(m) {
      const rcu = new Rcu(m);
      const first = new RcuBox(1, 'vma v1');
      const gp = new Cell<RcuBox<number>>(first, 'mm->vma');
      m.spawn(readers, 'updater', function* () {
        const old = yield* gp.load();
        yield* gp.store(new RcuBox(2, 'vma v2'));
        if (opts.free === 'kfree_rcu') yield* rcu.kfreeRcu(old, 'vma v1');
        else {
          yield* rcu.synchronize();
          old.poison('kfree after synchronize_rcu');
        }
      });
      // Readers first (CPU 0 up): dfs starts with CPU 0 and backtracks over the readers' steps without
      // first wading through synchronize_rcu's spin iterations.
      for (let i = 0; i < readers; i++) {
        m.spawn(i, `reader${i}`, function* () {
          yield* rcu.readLock();
          const p = yield* gp.load();
          const a = yield* p.get();
          if (opts.late) yield* rcu.readUnlock();
          const b = yield* p.get();
          kassert(a === b, 'object changed under the reader');
          if (!opts.late) yield* rcu.readUnlock();
        });
      }
      return () => kassert(first.isPoisoned, 'the old object was never freed');
    },
  };
}

describe('Rcu', () => {
  it('never frees an object under a reader (kfree_rcu; random, pct, dfs)', () => {
    exploreAll(
      lookup({ free: 'kfree_rcu' }),
      'never frees an object under a reader (kfree_rcu; random, pct, dfs)',
    );
    exploreAll(
      lookup({ free: 'kfree_rcu', readers: 2 }),
      'never frees an object under a reader (kfree_rcu; random, pct, dfs)',
      ['random', 'pct'],
    );
  });

  it('never frees an object under a reader (synchronize_rcu; random, pct, dfs)', () => {
    exploreAll(
      lookup({ free: 'synchronize' }),
      'never frees an object under a reader (synchronize_rcu; random, pct, dfs)',
    );
  });

  it('catches a reader that uses the object after rcu_read_unlock', () => {
    for (const free of ['kfree_rcu', 'synchronize'] as const) {
      for (const opts of [
        { policy: 'random', runs: 500, seed: 5 },
        { policy: 'pct', runs: 500, seed: 5 },
        { policy: 'dfs', bound: 2, runs: 5000 },
      ] as const) {
        const f = expectCaught(lookup({ free, late: true }), opts, 'use-after-free');
        expect(f.message).toMatch(/read of 'vma v1' after it was freed/);
      }
    }
  });

  it('synchronize_rcu waits for a reader that is inside its section (timed)', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let syncDone = 0;
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(10_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
      syncDone = yield* now();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(syncDone).toBeGreaterThan(10_000);
    expect(rcu.completed).toBe(1);
  });

  it('call_rcu runs the callback after the grace period, in the rcu_gp kthread', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    let ranAt = -1;
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(5_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'caller', function* () {
      yield* delay(100);
      yield* rcu.callRcu(function* (): Kernel<void> {
        ranAt = yield* now();
      });
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(ranAt).toBeGreaterThan(5_000);
    expect(m.allTasks().map((t) => t.name)).toContain('rcu_gp');
    expect(rcu.pendingCallbacks).toBe(0);
  });

  it('read side touches only CPU-local lines', () => {
    const m = new Machine({ cpus: 4, trace: true });
    const rcu = new Rcu(m);
    for (let i = 0; i < 4; i++) {
      m.spawn(i, `r${i}`, function* () {
        for (let k = 0; k < 3; k++) {
          yield* rcu.readLock();
          yield* rcu.readUnlock();
        }
      });
    }
    const r = m.run();
    expect(r.failure).toBeNull();
    for (const e of r.trace!.filter((e) => e.kind === 'write')) expect(e.label).toBe(`rcu_data[${e.cpu}]`);
  });

  it('reports rcu_read_unlock without rcu_read_lock, naming the CPU', () => {
    const m = new Machine({ cpus: 4 });
    const rcu = new Rcu(m);
    m.spawn(3, 't', function* () {
      yield* rcu.readLock();
      yield* rcu.readUnlock();
      yield* rcu.readUnlock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('rcu');
    expect(r.failure?.message).toMatch(
      /rcu_read_unlock by task 't' on CPU 3 without a matching rcu_read_lock/,
    );
  });

  it('reports a CPU that ends inside a read-side section, and synchronize_rcu inside one', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    m.spawn(1, 't', function* () {
      yield* rcu.readLock();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('rcu');
    expect(r.failure?.message).toMatch(/CPU 1 ended inside an RCU read-side critical section/);

    const rcu2 = new Rcu(1);
    expect(() =>
      runSync(
        (function* () {
          yield* rcu2.readLock();
          yield* rcu2.synchronize();
        })(),
      ),
    ).toThrow(/synchronize_rcu .* inside an RCU read-side critical section on CPU 0/);
  });

  it('sleeping inside a read-side section is reported', () => {
    const m = new Machine({ cpus: 1 });
    const rcu = new Rcu(m);
    m.spawn(0, 't', function* () {
      yield* rcu.readLock();
      yield* block(new WaitQueue('io'), () => false);
    });
    expect(m.run().failure?.kind).toBe('might-sleep');
  });

  it('works synchronously: kfree_rcu poisons at the next grace period', () => {
    const rcu = new Rcu(2);
    const box = new RcuBox('x', 'obj');
    runSync(rcu.readLock());
    expect(runSync(box.get())).toBe('x');
    runSync(rcu.readUnlock());
    runSync(rcu.kfreeRcu(box, 'obj'));
    expect(box.isPoisoned).toBe(false);
    runSync(rcu.barrier());
    expect(box.isPoisoned).toBe(true);
    expect(() => runSync(box.get())).toThrow(/read of 'obj' after it was freed \(kfree_rcu of obj/);
    expect(() => box.poison('again')).toThrow(/double free of 'obj'/);
  });

  it('misuse is an RcuError', () => {
    let caught: unknown;
    try {
      runSync(new Rcu(1).readUnlock());
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(RcuError);
    expect((caught as Error).name).toBe('RcuError');
  });

  it('rcu_read_lock disables preemption once per level and rcu_read_unlock gives it back; both work in an interrupt on an idle CPU', () => {
    const m = new Machine({ cpus: 2 });
    const rcu = new Rcu(m);
    const counts: number[] = [];
    const pc = function* (): Kernel<number> {
      return (yield* current()).task?.preemptCount ?? -1;
    };
    m.spawn(0, 't', function* () {
      counts.push(yield* pc());
      yield* rcu.readLock();
      counts.push(yield* pc());
      yield* rcu.readLock();
      counts.push(yield* pc());
      yield* rcu.readUnlock();
      counts.push(yield* pc());
      yield* rcu.readUnlock();
      counts.push(yield* pc());
      // CPU 1 runs no task: the interrupt has no preempt count to change.
      yield* sendIpi([1], function* () {
        yield* rcu.readLock();
        counts.push(rcu.isReading(1) ? 1 : 0);
        yield* rcu.readUnlock();
        counts.push(rcu.isReading(1) ? 1 : 0);
      });
    });
    expect(m.run().failure).toBeNull();
    expect(counts).toEqual([0, 1, 2, 1, 0, 1, 0]);
  });

  it('kfree_rcu names what it freed ("object" unless told) and the grace period in the poison record', () => {
    const rcu = new Rcu(1);
    const reasons: string[] = [];
    runSync(rcu.kfreeRcu({ poison: (r) => void reasons.push(r) }));
    runSync(rcu.synchronize());
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^kfree_rcu of object by .+, after grace period 1$/);
  });

  it('a grace period is started and ended on the rcu_state line, and its wait spins as synchronize_rcu', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const rcu = new Rcu(m);
    m.spawn(0, 'reader', function* () {
      yield* rcu.readLock();
      yield* delay(5_000);
      yield* rcu.readUnlock();
    });
    m.spawn(1, 'sync', function* () {
      yield* delay(100);
      yield* rcu.synchronize();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    const sync = r.trace!.filter((e) => e.task === 'sync');
    expect(sync.filter((e) => e.kind === 'rmw').map((e) => e.label)).toEqual(['rcu_state', 'rcu_state']);
    expect(sync.some((e) => e.kind === 'spin' && e.label === 'synchronize_rcu')).toBe(true);
  });
});
