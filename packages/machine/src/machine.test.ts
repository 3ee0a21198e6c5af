import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import {
  block,
  cpuRelax,
  delay,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  now,
  preemptDisable,
  preemptEnable,
  self,
  sendIpi,
  wake,
  yieldCpu,
} from './effects.js';
import {
  MachineConfigError,
  ScheduleDivergenceError,
  ScheduleFormatError,
  UseAfterFreeError,
} from './errors.js';
import { explore, parsePolicy, replaySchedule } from './explore.js';
import { formatFailure } from './failure.js';
import { Machine } from './machine.js';
import { MemoryLine } from './memory-line.js';
import { random } from './policy/random.js';
import { replay } from './policy/replay.js';
import { runSync, WouldBlockError } from './run-sync.js';
import { counterScenario } from './test-support/scenarios.js';
import { toChromeTrace, toCompactTrace } from './trace.js';
import { WaitQueue } from './wait-queue.js';

describe('configuration errors', () => {
  it('rejects bad CPU counts, seeds and policies with typed errors', () => {
    expect(() => new Machine({ cpus: 0 })).toThrow(MachineConfigError);
    expect(() => new Machine({ cpus: 0 })).toThrow(/cpus must be an integer from 1 to 1024, got 0/);
    expect(() => new Machine({ cpus: 1025 })).toThrow(MachineConfigError);
    expect(() => new Machine({ cpus: 2.5 })).toThrow(MachineConfigError);
    expect(() => new Machine({ cpus: 2, seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(() => new Machine({ cpus: 2, seed: -1 })).toThrow(MachineConfigError);
    expect(() => parsePolicy('fifo')).toThrow(/unknown policy 'fifo'/);
    expect(() => parsePolicy('random:x')).toThrow(MachineConfigError);
    expect(() => explore(counterScenario(true), { policy: 'bfs' as 'dfs' })).toThrow(
      /unknown exploration policy/,
    );
    expect(() => new Machine({ cpus: 2, cost: { lineTransfer: -3 } })).toThrow(/lineTransfer/);
    const m = new Machine({ cpus: 2 });
    expect(() => m.spawn(2, 't', function* () {})).toThrow(/CPUs 0 to 1/);
  });

  it('rejects malformed and divergent replay schedules', () => {
    expect(() => replay('0,1,0')).toThrow(ScheduleFormatError);
    expect(() => replay('s1:0,x')).toThrow(/token 2 is "x"/);
    expect(() => replay('s1:0*0')).toThrow(ScheduleFormatError);
    // CPU 5 does not exist / cannot run at step 1.
    expect(() => replaySchedule(counterScenario(true), 's1:5')).toThrow(ScheduleDivergenceError);
    // A schedule that is too short for the program.
    expect(() => replaySchedule(counterScenario(true), 's1:0')).toThrow(/wants to take step 2/);
    // Each task takes two steps: start, then the RMW (after which it returns).
    const ok = replaySchedule(counterScenario(true), 's1:0*2,1*2');
    expect(ok.ok).toBe(true);
    // A CPU whose task has finished cannot run.
    expect(() => replaySchedule(counterScenario(true), 's1:0*3,1*2')).toThrow(
      /step 3 of the schedule runs CPU 0/,
    );
    // A schedule that is too long.
    expect(() => replaySchedule(counterScenario(true), 's1:0*2,1*2,1')).toThrow(ScheduleDivergenceError);
  });

  it('a machine runs once', () => {
    const m = new Machine({ cpus: 1 });
    m.run();
    expect(() => m.run()).toThrow(/runs once/);
  });
});

describe('failures are reported, never swallowed', () => {
  it('a kernel task that throws is reported with its CPU, task and stack', () => {
    const m = new Machine({ cpus: 2, policy: random(1) });
    const x = new AtomicCell(0, 'x');
    function* faulty(): Kernel<void> {
      yield* x.fetchAdd(1);
      throw new TypeError('null pointer dereference in faulty()');
    }
    m.spawn(1, 'worker', faulty);
    const r = m.run();
    expect(r.ok).toBe(false);
    expect(r.failure?.kind).toBe('exception');
    expect(r.failure?.cpu).toBe(1);
    expect(r.failure?.task).toBe('worker');
    expect(r.failure?.message).toBe('TypeError: null pointer dereference in faulty()');
    expect(r.failure?.stack).toMatch(/faulty/);
    expect(formatFailure(r.failure!)).toMatch(/EXCEPTION: TypeError/);
  });

  it('memory layers report use-after-free through KernelFault subclasses', () => {
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'reader', function* () {
      yield* delay(1);
      throw new UseAfterFreeError('read of freed frame 0x42');
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('use-after-free');
    expect(r.failure?.lastEvents.at(-1)?.what).toMatch(/delay/);
  });

  it('stops a livelock at the step limit and names what each CPU spins on', () => {
    const m = new Machine({ cpus: 2, maxSteps: 1000 });
    const flag = new Cell(false, 'flag');
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `spinner${i}`, function* () {
        while (!(yield* flag.load())) yield* cpuRelax('flag');
      });
    }
    const r = m.run();
    expect(r.failure?.kind).toBe('step-limit');
    expect(r.failure?.message).toMatch(/no end after 1000 steps/);
  });

  it('sleeping with interrupts disabled is reported', () => {
    const m = new Machine({ cpus: 1 });
    const wq = new WaitQueue('wq');
    m.spawn(0, 't', function* () {
      yield* localIrqDisable();
      yield* block(wq);
    });
    expect(m.run().failure?.kind).toBe('might-sleep');
    const m2 = new Machine({ cpus: 1 });
    m2.spawn(0, 't', function* () {
      yield* preemptDisable();
      yield* block(wq);
      yield* preemptEnable();
    });
    expect(m2.run().failure?.message).toMatch(/atomic context/);
  });
});

describe('blocking and waking', () => {
  it('a task blocks on a wait queue until another CPU wakes it, and no wake-up is lost', () => {
    const res = explore(
      {
        cpus: 2,
        setup(m) {
          const ready = new Cell(false, 'ready');
          const wq = new WaitQueue('ready');
          let got = false;
          m.spawn(0, 'waiter', function* () {
            yield* block(wq, () => ready.value);
            got = yield* ready.load();
          });
          m.spawn(1, 'waker', function* () {
            yield* ready.store(true);
            yield* wake(wq);
          });
          return () => {
            if (!got) throw new Error('waiter ran before ready was set');
          };
        },
      },
      { policy: 'dfs', bound: 3 },
    );
    expect(res.failure).toBeNull();
    expect(res.exhausted).toBe(true);
  });

  it('several tasks share a CPU: a sleeper lets the next task run, the tick preempts a long runner', () => {
    const m = new Machine({ cpus: 1, cost: { tick: 10_000 } });
    const log: string[] = [];
    m.spawn(0, 'A', function* () {
      for (let i = 0; i < 3; i++) {
        yield* delay(6_000);
        log.push(`A${i}`);
      }
    });
    m.spawn(0, 'B', function* () {
      for (let i = 0; i < 3; i++) {
        yield* delay(6_000);
        log.push(`B${i}`);
      }
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    // A runs until its clock passes the first tick (after two delays), then B gets the CPU.
    expect(log.slice(0, 3)).toEqual(['A0', 'A1', 'B0']);
    expect(log).toHaveLength(6);
    expect(r.time).toBeGreaterThanOrEqual(36_000 + 1_500);
  });

  it('yieldCpu hands the CPU to the next queued task', () => {
    const m = new Machine({ cpus: 1 });
    const log: string[] = [];
    for (const n of ['A', 'B']) {
      m.spawn(0, n, function* () {
        log.push(`${n}1`);
        yield* yieldCpu();
        log.push(`${n}2`);
      });
    }
    m.run();
    expect(log).toEqual(['A1', 'B1', 'A2', 'B2']);
  });
});

describe('IPIs', () => {
  function ipiScenario(log: string[]) {
    return {
      cpus: 2,
      setup(m: Machine) {
        m.spawn(0, 'sender', function* () {
          yield* delay(100);
          log.push('send');
          yield* sendIpi([1], function* () {
            log.push('handler');
          });
          log.push(`acked at ${yield* now()}`);
        });
        m.spawn(1, 'walker', function* () {
          yield* localIrqDisable();
          log.push('irqs off');
          for (let i = 0; i < 5; i++) yield* delay(1_000, 'walking page tables');
          log.push('enabling');
          yield* localIrqEnable();
          log.push('irqs on');
        });
      },
    };
  }

  it('an IPI waits while its target has interrupts off (timed policy)', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, trace: true });
    ipiScenario(log).setup(m);
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(log.indexOf('handler')).toBeGreaterThan(log.indexOf('enabling'));
    const ackedAt = Number(/acked at (\d+)/.exec(log.find((l) => l.startsWith('acked'))!)![1]);
    expect(ackedAt).toBeGreaterThan(5_000);
  });

  it('under every explored interleaving the handler never runs while interrupts are off', () => {
    let violations = 0;
    const res = explore(
      {
        cpus: 2,
        setup(m) {
          const log: string[] = [];
          ipiScenario(log).setup(m);
          return () => {
            const h = log.indexOf('handler');
            if (h < 0 || (log.indexOf('irqs off') < h && h < log.indexOf('enabling'))) violations++;
          };
        },
      },
      { policy: 'random', runs: 200 },
    );
    expect(res.failure).toBeNull();
    expect(violations).toBe(0);
  });

  it('an IPI to a CPU that spins with interrupts off waiting for the sender never completes', () => {
    const m = new Machine({ cpus: 2, maxSteps: 5_000 });
    const done = new Cell(false, 'done');
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {}, true, 'flush_tlb');
      yield* done.store(true);
    });
    m.spawn(1, 'spinner', function* () {
      yield* localIrqDisable();
      while (!(yield* done.load())) yield* cpuRelax();
      yield* localIrqEnable();
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('step-limit');
    expect(r.failure?.cpus[0].next).toMatch(/waiting for 1 IPI ack/);
  });

  it('rejects IPIs to itself or to missing CPUs', () => {
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 's', function* () {
      yield* sendIpi([0], function* () {});
    });
    expect(m.run().failure?.message).toMatch(/targets must be other CPUs/);
  });
});

describe('lines, time and traces', () => {
  it('the physical address space maps onto 64-byte lines', () => {
    const m = new Machine({ cpus: 1 });
    expect(m.physLine(0x1000)).toBe(m.physLine(0x103f));
    expect(m.physLine(0x1000)).not.toBe(m.physLine(0x1040));
    expect(m.physLine(0x1040).label).toBe('phys:0x1040');
  });

  it('effectCount counts the effects performed so far, as run() reports them at the end', () => {
    const m = new Machine({ cpus: 2 });
    const c = new Cell(0, 'c');
    const around: number[] = [];
    m.spawn(0, 'counted', function* () {
      const before = m.effectCount;
      yield* c.store(1);
      yield* c.load();
      yield* delay(10);
      around.push(m.effectCount - before);
    });
    m.spawn(1, 'other', function* () {
      yield* c.load();
    });
    const res = m.run();
    expect(res.ok).toBe(true);
    // Between its two reads the counting task performed three effects; the other CPU's start and load
    // (the machine records a task's start as a step too) may land in between under the timed policy.
    expect(around[0]).toBeGreaterThanOrEqual(3);
    expect(around[0]).toBeLessThanOrEqual(5);
    expect(m.effectCount).toBe(res.effects);
    expect(res.effects).toBe(6); // two starts, store, load, delay and the other task's load
  });

  it('self() and now() report the CPU and its clock', () => {
    const m = new Machine({ cpus: 3 });
    const seen: Array<[number, number]> = [];
    m.spawn(2, 'x', function* () {
      yield* delay(500);
      const s = yield* self();
      seen.push([s.cpu, yield* now()]);
    });
    m.run();
    expect(seen).toEqual([[2, 500]]);
  });

  it('exports Chrome and compact traces of every performed effect', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const line = new MemoryLine('shared');
    const c = new AtomicCell(0, line);
    m.spawn(0, 'a', function* () {
      yield* c.fetchAdd(1);
    });
    m.spawn(1, 'b', function* () {
      yield* c.fetchAdd(1);
    });
    const r = m.run();
    const chrome = toChromeTrace(r.trace!, 2);
    const rmws = chrome.traceEvents.filter((e) => e.cat === 'rmw');
    expect(rmws).toHaveLength(2);
    expect(rmws[0].name).toBe('rmw shared');
    expect(new Set(rmws.map((e) => e.tid))).toEqual(new Set([0, 1]));
    const compact = toCompactTrace(r.trace!, 2);
    expect(compact.events.length).toBe(r.trace!.length);
    expect(compact.strings[compact.events.find((e) => compact.strings[e[3]] === 'rmw')![4]]).toBe('shared');
    expect(JSON.parse(JSON.stringify(compact))).toEqual(compact);
  });
});

describe('runSync', () => {
  it('runs kernel code outside a machine and refuses to sleep', () => {
    const c = new AtomicCell(1, 'c');
    expect(runSync(c.addReturn(2))).toBe(3);
    expect(() => runSync(block(new WaitQueue('never')))).toThrow(WouldBlockError);
  });
});
