import { describe, expect, it } from 'vitest';
import { AtomicCell } from './cell.js';
import {
  delay,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  preemptDisable,
  preemptEnable,
  raiseDeviceIrq,
  sendIpi,
  spinWaitEffect,
  yieldCpu,
} from './effects.js';
import { explore, replaySchedule, type Scenario } from './explore.js';
import { Machine } from './machine.js';
import { runSync } from './run-sync.js';

/** Runs `body` as task 't' on CPU 0, with `others` more tasks queued behind it on the same CPU. */
function runOnCpu0(body: () => Kernel<void>, others = 0) {
  const m = new Machine({ cpus: 1 });
  m.spawn(0, 't', body);
  for (let i = 0; i < others; i++) m.spawn(0, `q${i}`, function* () {});
  return m.run();
}

describe('yieldCpu() in atomic context is "scheduling while atomic"', () => {
  it('with interrupts disabled, whether or not another task is waiting', () => {
    for (const others of [0, 1]) {
      const f = runOnCpu0(function* () {
        yield* localIrqDisable();
        yield* yieldCpu();
        yield* localIrqEnable();
      }, others).failure;
      expect(f?.kind).toBe('might-sleep');
      expect(f?.message).toBe(
        'task t on CPU 0 called yieldCpu() in atomic context (interrupts disabled): scheduling while atomic',
      );
      expect(f?.task).toBe('t');
      expect(f?.cpu).toBe(0);
    }
  });

  it('with a preempt count, and says so when interrupts are off too', () => {
    for (const others of [0, 2]) {
      const f = runOnCpu0(function* () {
        yield* preemptDisable();
        yield* preemptDisable();
        yield* yieldCpu();
        yield* preemptEnable();
        yield* preemptEnable();
      }, others).failure;
      expect(f?.kind).toBe('might-sleep');
      expect(f?.message).toBe(
        'task t on CPU 0 called yieldCpu() in atomic context (preempt count 2, e.g. with a spinlock held): scheduling while atomic',
      );
    }
    const both = runOnCpu0(function* () {
      yield* preemptDisable();
      yield* localIrqDisable();
      yield* yieldCpu();
    }).failure;
    expect(both?.message).toMatch(/\(interrupts disabled; preempt count 1, e\.g\. with a spinlock held\)/);
  });

  it('from an IPI handler or a device interrupt handler', () => {
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], () => yieldCpu(), true, 'tlb-flush');
    });
    const f = m.run().failure;
    expect(f?.kind).toBe('might-sleep');
    expect(f?.message).toBe(
      "interrupt handler 'tlb-flush' on CPU 1 called yieldCpu() in interrupt context: scheduling while atomic",
    );
    expect(f?.task).toBe('irq');
    expect(f?.cpu).toBe(1);

    const m2 = new Machine({ cpus: 1 });
    m2.spawn(0, 'io', function* () {
      yield* raiseDeviceIrq(100, () => yieldCpu(), 'blk-complete');
      yield* delay(1000);
    });
    m2.spawn(0, 'other', function* () {
      yield* delay(1000);
    });
    const f2 = m2.run().failure;
    expect(f2?.kind).toBe('might-sleep');
    expect(f2?.message).toMatch(
      /^interrupt handler 'blk-complete' on CPU 0 called yieldCpu\(\) in interrupt context/,
    );
  });

  it('with preemption and interrupts back on, the yield hands the CPU over as before', () => {
    const m = new Machine({ cpus: 1 });
    const log: string[] = [];
    for (const n of ['A', 'B']) {
      m.spawn(0, n, function* () {
        yield* preemptDisable();
        yield* localIrqDisable();
        log.push(`${n}1`);
        yield* localIrqEnable();
        yield* preemptEnable();
        yield* yieldCpu();
        log.push(`${n}2`);
      });
    }
    expect(m.run().ok).toBe(true);
    expect(log).toEqual(['A1', 'B1', 'A2', 'B2']);
  });

  it('runSync has no scheduler: a yield there does nothing', () => {
    expect(
      runSync(
        (function* () {
          yield* yieldCpu();
          return 7;
        })(),
      ),
    ).toBe(7);
  });
});

/**
 * A zap loop shaped like `zap_pte_range()` in mm/memory.c: it clears entries under a page-table spinlock and
 * offers the CPU every few entries. The correct version drops the lock first (Linux breaks out of the locked
 * loop, unlocks, calls `cond_resched()` and comes back); the broken one calls `cond_resched()` with the lock
 * held, which is "scheduling while atomic".
 */
function zapScenario(broken: boolean): Scenario {
  return {
    cpus: 2,
    setup(m) {
      const ptl = new AtomicCell(0, 'ptl');
      const wait = spinWaitEffect(ptl.line, 'ptl');
      function* lock(): Kernel<void> {
        yield* preemptDisable();
        while ((yield* ptl.xchg(1)) !== 0) {
          while (ptl.value !== 0) yield wait;
        }
      }
      function* unlock(): Kernel<void> {
        yield* ptl.store(0);
        yield* preemptEnable();
      }
      let zapped = 0;
      m.spawn(0, 'zap', function* () {
        yield* lock();
        for (let i = 1; i <= 4; i++) {
          zapped++;
          if (i % 2 === 0) {
            if (broken) {
              yield* yieldCpu();
            } else {
              yield* unlock();
              yield* yieldCpu();
              yield* lock();
            }
          }
        }
        yield* unlock();
      });
      m.spawn(0, 'neighbour', function* () {
        yield* delay(10);
      });
      m.spawn(1, 'faulter', function* () {
        yield* lock();
        yield* unlock();
      });
      return () => {
        if (zapped !== 4) throw new Error(`zapped ${zapped} entries, want 4`);
      };
    },
  };
}

describe('a zap loop that yields with its page-table lock held is caught', () => {
  it('the correct loop passes every explored schedule', () => {
    const r = explore(zapScenario(false), { policy: 'dfs', bound: 2 });
    expect(r.failure).toBeNull();
    expect(r.exhausted).toBe(true);
  });

  it('the broken loop fails with a might-sleep report and a schedule that replays it', () => {
    const r = explore(zapScenario(true), { policy: 'random', runs: 20, seed: 1 });
    const f = r.failure;
    expect(f?.kind).toBe('might-sleep');
    expect(f?.task).toBe('zap');
    expect(f?.message).toMatch(/^task zap on CPU 0 called yieldCpu\(\) in atomic context \(preempt count 1/);
    const again = replaySchedule(zapScenario(true), f!.schedule);
    expect(again.failure?.message).toBe(f?.message);
    expect(again.failure?.step).toBe(f?.step);
  });
});
