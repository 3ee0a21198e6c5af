import { Cell, delay, kassert, Machine, now, runScenario, runSync, type Scenario, timed } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultLockdep } from './lockdep.js';
import { RangeLock, type RangeLockHandle } from './range-lock.js';
import { exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

type Req = { start: number; end: number; kind: 'read' | 'write' };

/** Each CPU takes its ranges in turn; overlapping conflicting holders must never coexist. */
function ranges(plan: Req[][]): Scenario {
  return {
    cpus: plan.length,
    setup(m) {
      const lock = new RangeLock('mm->mmap_lock');
      const inside: Req[] = [];
      const data = new Cell(0, 'data');
      let writes = 0;
      plan.forEach((reqs, cpu) => {
        m.spawn(cpu, `t${cpu}`, function* () {
          for (const r of reqs) {
            const h =
              r.kind === 'read'
                ? yield* lock.readLock(r.start, r.end)
                : yield* lock.writeLock(r.start, r.end);
            for (const o of inside) {
              kassert(
                o.end <= r.start || o.start >= r.end || (o.kind === 'read' && r.kind === 'read'),
                `${r.kind} [${r.start},${r.end}) overlaps held ${o.kind} [${o.start},${o.end})`,
              );
            }
            inside.push(r);
            if (r.kind === 'write') {
              const v = yield* data.load();
              yield* data.store(v + 1);
              writes++;
            } else yield* data.load();
            inside.splice(inside.indexOf(r), 1);
            yield* lock.unlock(h);
          }
        });
      });
      return () => {
        kassert(!lock.isLocked() && lock.waiting() === 0, `left: ${lock.describeHolders()}`);
        void writes;
      };
    },
  };
}

describe('RangeLock', () => {
  it('excludes overlapping conflicting ranges (random, pct, dfs)', () => {
    const plan: Req[][] = [
      [{ start: 0, end: 10, kind: 'write' }],
      [{ start: 5, end: 15, kind: 'read' }],
      [{ start: 8, end: 9, kind: 'write' }],
    ];
    exploreAll(ranges(plan), 'excludes overlapping conflicting ranges (random, pct, dfs)');
    const mixed: Req[][] = [
      [
        { start: 0, end: 4, kind: 'read' },
        { start: 2, end: 6, kind: 'write' },
      ],
      [
        { start: 3, end: 8, kind: 'write' },
        { start: 0, end: 100, kind: 'read' },
      ],
    ];
    exploreAll(ranges(mixed), 'excludes overlapping conflicting ranges (random, pct, dfs)');
  });

  it('lets writers of disjoint ranges run in parallel (timed)', () => {
    const run = (sameRange: boolean) => {
      const m = new Machine({ cpus: 2 });
      const lock = new RangeLock('l', { lockdep: false });
      for (let i = 0; i < 2; i++) {
        m.spawn(i, `w${i}`, function* () {
          const s = sameRange ? 0 : i * 10;
          const h = yield* lock.writeLock(s, s + 10);
          yield* delay(10_000);
          yield* lock.unlock(h);
        });
      }
      const r = m.run();
      expect(r.failure).toBeNull();
      return r.time;
    };
    expect(run(false)).toBeLessThan(15_000);
    expect(run(true)).toBeGreaterThan(20_000);
  });

  it('serves overlapping requests in arrival order, so a writer is not starved by readers', () => {
    const s: Scenario = {
      cpus: 3,
      maxSteps: 200_000,
      setup(m) {
        const lock = new RangeLock('l', { lockdep: false });
        let writerDone = false;
        m.spawn(0, 'writer', function* () {
          yield* delay(200);
          yield* lock.downWrite();
          writerDone = true;
          yield* lock.upWrite();
        });
        for (let i = 1; i < 3; i++) {
          m.spawn(i, `r${i}`, function* () {
            while (!writerDone) {
              const h = yield* lock.readLock(i * 5, i * 5 + 20);
              yield* delay(300);
              yield* lock.unlock(h);
            }
          });
        }
      },
    };
    exploreAll(s, 'serves overlapping requests in arrival order, so a writer is not starved by readers', [
      'random',
    ]);
    expect(runScenario(s, timed()).failure).toBeNull();
  });

  it('works as a drop-in mmap lock with whole-range methods and downgrade', () => {
    const s: Scenario = {
      cpus: 3,
      setup(m) {
        const lock = new RangeLock('mmap_lock');
        let writer = 0;
        let readers = 0;
        m.spawn(0, 'w', function* () {
          yield* lock.downWrite();
          writer++;
          kassert(readers === 0, 'reader inside with writer');
          writer--;
          yield* lock.downgradeWrite();
          readers++;
          readers--;
          yield* lock.upRead();
        });
        for (let i = 1; i < 3; i++) {
          m.spawn(i, `r${i}`, function* () {
            yield* lock.downRead();
            readers++;
            kassert(writer === 0, 'writer inside with reader');
            readers--;
            yield* lock.upRead();
          });
        }
        return () => kassert(!lock.isLocked(), 'still locked');
      },
    };
    exploreAll(s, 'works as a drop-in mmap lock with whole-range methods and downgrade');
  });

  it('trylocks and predicates', () => {
    const lock = new RangeLock('l', { lockdep: false });
    const h = runSync(lock.writeLock(0, 10));
    expect(lock.isWriteLocked()).toBe(true);
    expect(runSync(lock.readTrylock(5, 6))).toBeNull();
    const h2 = runSync(lock.readTrylock(10, 20)) as RangeLockHandle;
    expect(h2).not.toBeNull();
    expect(lock.readers()).toBe(1);
    expect(runSync(lock.downReadTrylock())).toBe(false);
    runSync(lock.unlock(h));
    runSync(lock.unlock(h2));
    expect(runSync(lock.downWriteTrylock())).toBe(true);
    runSync(lock.upWrite());
    expect(lock.isLocked()).toBe(false);
    expect(runSync(now())).toBeGreaterThanOrEqual(0);
  });

  it('reports a double unlock and up_read without down_read, naming the lock and CPU', () => {
    const lock = new RangeLock('mmap_lock', { lockdep: false });
    const h = runSync(lock.readLock(0, 1));
    runSync(lock.unlock(h));
    expect(() => runSync(lock.unlock(h))).toThrow(
      /range unlock of \[0, 1\) on 'mmap_lock' by task 'sync' on CPU 0, but that range is not held/,
    );
    expect(() => runSync(lock.upRead())).toThrow(/up_read of 'mmap_lock' .* holds no whole-range read lock/);
    expect(() => runSync(lock.readLock(5, 5))).toThrow(/bad range/);
  });
});
