import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import {
  block,
  cpuRelax,
  delay,
  type Effect,
  EffectKind,
  fence,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  localIrqRestore,
  localIrqSave,
  now,
  preemptDisable,
  preemptEnable,
  raiseDeviceIrq,
  read,
  readEffect,
  self,
  sendIpi,
  spinWaitEffect,
  wake,
  wakeTask,
  write,
  yieldCpu,
} from './effects.js';
import { MachineConfigError } from './errors.js';
import { replaySchedule } from './explore.js';
import { Machine, type RunResult } from './machine.js';
import { MemoryLine } from './memory-line.js';
import type { Policy } from './policy/policy.js';
import { random } from './policy/random.js';
import { timed } from './policy/timed.js';
import type { Task } from './task.js';
import { WaitQueue } from './wait-queue.js';

/** Latencies that differ from each other, so that each charge can only come from one rule. */
const cost = {
  pause: 35,
  fence: 8,
  irqToggle: 3,
  ipiSend: 300,
  ipiLatency: 1000,
  exceptionEntryExit: 250,
  lineTransfer: 60,
  contextSwitch: 1500,
};

describe('what each effect costs (timed policy)', () => {
  it('charges pause, fence, interrupt toggles and delays to the CPU clock; now() and self() are free', () => {
    const m = new Machine({ cpus: 1, cost });
    const seen: unknown[] = [];
    m.spawn(0, 't', function* () {
      seen.push(yield* now());
      yield* cpuRelax();
      seen.push(yield* now());
      yield* fence();
      seen.push(yield* now());
      yield* localIrqDisable();
      seen.push(yield* now(), (yield* self()).irqsEnabled);
      yield* localIrqEnable();
      seen.push(yield* now(), (yield* self()).irqsEnabled);
      seen.push(yield* localIrqSave(), yield* localIrqSave()); // true, then false
      yield* localIrqRestore(true);
      seen.push(yield* now(), (yield* self()).irqsEnabled);
      yield* delay(100);
      yield* delay(0);
      seen.push(yield* now());
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(seen).toEqual([0, 35, 43, 46, false, 49, true, true, false, 58, true, 158]);
    expect(r.time).toBe(158);
    expect(r.clocks).toEqual([158]);
  });

  it('an IPI costs the sender ipiSend per target and the target the exception entry; the ack a line transfer', () => {
    const m = new Machine({ cpus: 3, cost });
    const seen: string[] = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1, 2], function* (cpu) {
        const s = yield* self();
        seen.push(`handler on ${cpu} at ${yield* now()} inIrq=${s.inIrq} irqs=${s.irqsEnabled}`);
      });
      seen.push(`acked at ${yield* now()}`);
      yield* sendIpi([1], function* () {}, false);
      seen.push(`no wait: ${yield* now()}`);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    // Sent at 300 and 600; each arrives ipiLatency later and enters the handler after exceptionEntryExit.
    expect(seen).toEqual([
      'handler on 1 at 1550 inIrq=true irqs=false',
      'handler on 2 at 1850 inIrq=true irqs=false',
      'acked at 1910', // the last ack (1850) plus a line transfer
      'no wait: 2210',
    ]);
    expect(r.clocks).toEqual([2210, 3460, 1850]); // CPU 1 takes the second IPI at 2210 + 1000 + 250
  });

  it('a sleeper lets the next task on its CPU run after a context switch', () => {
    const m = new Machine({ cpus: 1, cost });
    const wq = new WaitQueue('wq');
    const seen: string[] = [];
    m.spawn(0, 'A', function* () {
      yield* delay(10);
      yield* block(wq, () => false);
    });
    m.spawn(0, 'B', function* () {
      seen.push(`B at ${yield* now()}`);
    });
    const r = m.run();
    expect(seen).toEqual(['B at 1510']);
    expect(r.failure?.kind).toBe('deadlock');
  });

  it('waking costs the waker a line transfer per task woken; the woken task runs no earlier than that', () => {
    const m = new Machine({ cpus: 4, cost });
    const wq = new WaitQueue('wq');
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      m.spawn(i, `s${i}`, function* () {
        yield* delay(i); // sleep in the order s0, s1, s2
        yield* block(wq);
        seen.push(`s${i} at ${yield* now()}`);
      });
    }
    m.spawn(3, 'waker', function* () {
      yield* delay(1000);
      const two = yield { kind: EffectKind.Wake, wq, count: 2 } as Effect;
      seen.push(`woke ${two} at ${yield* now()}`);
      yield* delay(1000);
      const rest = yield { kind: EffectKind.Wake, wq, count: Number.POSITIVE_INFINITY } as Effect;
      const none = yield { kind: EffectKind.Wake, wq, count: 1 } as Effect;
      seen.push(`woke ${rest} then ${none} at ${yield* now()}`);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    // FIFO: the first two sleepers, woken at 1060 and 1120; the last one a transfer after the second wake.
    expect([...seen].sort()).toEqual(
      ['s0 at 1060', 's1 at 1120', 's2 at 2180', 'woke 1 then 0 at 2180', 'woke 2 at 1120'].sort(),
    );
  });

  it('wakeTask wakes a sleeping task, and a wake-up before the sleep is not lost', () => {
    const m = new Machine({ cpus: 2, cost });
    const wq = new WaitQueue('wq');
    const results: unknown[] = [];
    const go = new Cell(false, 'go');
    const sleeper: Task = m.spawn(0, 'sleeper', function* () {
      while (!(yield* go.load())) yield* cpuRelax();
      yield* block(wq); // already woken: returns at once
      yield* block(wq); // sleeps until the second wakeTask
      results.push(`sleeper done at ${yield* now()}`);
    });
    m.spawn(1, 'waker', function* () {
      results.push(yield { kind: EffectKind.WakeTask, task: sleeper } as Effect); // runnable: false
      yield* go.store(true);
      yield* delay(100_000);
      results.push(yield { kind: EffectKind.WakeTask, task: sleeper } as Effect); // asleep: true
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(results.slice(0, 2)).toEqual([false, true]);
    expect(wq.sleepers).toHaveLength(0);
    const at = Number(/at (\d+)/.exec(String(results[2]))![1]);
    expect(at).toBeGreaterThanOrEqual(100_000 + 60);
  });

  it('a wakeTask reaching a task that was woken and has not slept again is kept for its next sleep', () => {
    // The lost wake-up: the sleeper is woken once (it leaves its first sleep), and a second wake-up arrives
    // while it is still running. Its next block must return at once instead of sleeping forever.
    const m = new Machine({ cpus: 2, cost });
    const first = new WaitQueue('first');
    const second = new WaitQueue('second');
    const results: unknown[] = [];
    const sleeper: Task = m.spawn(0, 'sleeper', function* () {
      yield* block(first); // sleeps until the waker's wake(first)
      yield* delay(10_000); // running, not asleep, when the wakeTask arrives
      yield* block(second); // already woken: returns at once
      results.push('sleeper done');
    });
    m.spawn(1, 'waker', function* () {
      yield* delay(100);
      yield* wake(first);
      yield* delay(200);
      results.push(yield { kind: EffectKind.WakeTask, task: sleeper } as Effect);
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(results).toEqual([false, 'sleeper done']);
    expect(second.sleepers).toHaveLength(0);
  });

  it('the tick preempts a task whose clock reached it, unless preemption or interrupts are off', () => {
    for (const guard of ['none', 'preempt', 'irq'] as const) {
      const m = new Machine({ cpus: 1, cost: { ...cost, tick: 1000 } });
      const log: string[] = [];
      m.spawn(0, 'A', function* () {
        if (guard === 'preempt') yield* preemptDisable();
        if (guard === 'irq') yield* localIrqDisable();
        yield* delay(1000 - (guard === 'irq' ? 3 : 0)); // the clock reaches the tick exactly
        log.push('A1');
        yield* delay(1);
        log.push('A2');
        if (guard === 'preempt') yield* preemptEnable();
        if (guard === 'irq') yield* localIrqEnable();
      });
      m.spawn(0, 'B', function* () {
        log.push('B');
      });
      expect(m.run().ok).toBe(true);
      expect(log).toEqual(guard === 'none' ? ['A1', 'B', 'A2'] : ['A1', 'A2', 'B']);
    }
  });
});

describe('bad kernel code is reported as a failure of the run', () => {
  function fails(body: () => Kernel<void>, cpus = 1) {
    const m = new Machine({ cpus });
    m.spawn(0, 'bad', body);
    return m.run().failure;
  }

  it('a delay that is not a finite number >= 0', () => {
    for (const ns of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const f = fails(function* () {
        yield* delay(ns);
      });
      expect(f?.kind).toBe('exception');
      expect(f?.message).toBe(`delay of ${ns} ns; a delay must be a finite number >= 0`);
      expect(f?.task).toBe('bad');
    }
  });

  it('a yielded value that is not an effect', () => {
    const f = fails(function* () {
      yield 42 as unknown as Effect;
    });
    expect(f?.kind).toBe('exception');
    expect(f?.message).toMatch(/^kernel code yielded 42, which is not a machine effect/);
    expect(f?.cpu).toBe(0);
  });

  it('an IPI handler that enables interrupts, sleeps, sends an IPI or throws', () => {
    const cases: Array<[() => Kernel<void>, string, RegExp]> = [
      [localIrqEnable, 'irq', /^IPI handler on CPU 1 enabled interrupts$/],
      [() => localIrqRestore(true), 'irq', /^IPI handler on CPU 1 enabled interrupts$/],
      [() => block(new WaitQueue('q')), 'might-sleep', /^IPI handler on CPU 1 tried to sleep on 'q'/],
      [() => sendIpi([0], function* () {}), 'ipi', /^IPI handler on CPU 1 tried to send an IPI/],
      [
        function* () {
          yield* delay(1);
          throw new RangeError('bad pfn');
        },
        'exception',
        /^RangeError: bad pfn$/,
      ],
    ];
    for (const [handler, kind, message] of cases) {
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 'sender', function* () {
        yield* sendIpi([1], handler);
      });
      const f = m.run().failure;
      expect(f?.kind).toBe(kind);
      expect(f?.message).toMatch(message);
      expect(f?.cpu).toBe(1);
      expect(f?.task).toBe('irq');
    }
    // Restoring "disabled" in a handler is allowed, and interrupts come back on after the handler.
    const m = new Machine({ cpus: 2 });
    const after: boolean[] = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], () => localIrqRestore(false));
    });
    m.spawn(1, 'target', function* () {
      yield* delay(10_000);
      after.push((yield* self()).irqsEnabled);
    });
    expect(m.run().ok).toBe(true);
    expect(after).toEqual([true]);
  });

  it('an IPI to a CPU that does not exist', () => {
    for (const target of [2, -1, 0.5]) {
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 's', function* () {
        yield* sendIpi([1, target], function* () {});
      });
      const f = m.run().failure;
      expect(f?.kind).toBe('ipi');
      expect(f?.message).toBe(
        `CPU 0 sent an IPI to ${target}; targets must be other CPUs of this machine (0 to 1)`,
      );
    }
    // No targets: nothing to wait for.
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 's', function* () {
      yield* sendIpi([], function* () {});
    });
    expect(m.run().ok).toBe(true);
  });
});

describe('failure reports', () => {
  it("a failure on CPU 0 takes CPU 0's clock, even when another CPU has run further", () => {
    const m = new Machine({ cpus: 2, cost: { ...cost, dram: 400 } });
    m.spawn(0, 'a', function* () {
      yield* delay(100);
      throw new Error('boom');
    });
    m.spawn(1, 'b', function* () {
      yield* delay(50);
      yield* read(new MemoryLine('cold')); // a miss to DRAM: CPU 1's clock moves to 450
      yield* delay(1000);
    });
    const r = m.run();
    expect(r.failure?.cpu).toBe(0);
    expect(r.failure?.message).toBe('Error: boom');
    expect(r.failure?.time).toBe(100);
    expect(r.failure?.cpus[1]?.clock).toBe(450);
  });

  it('a task failure counts its step, takes its CPU clock, and replays to the same failure', () => {
    const scenario = {
      cpus: 2,
      setup(m: Machine) {
        m.spawn(0, 'a', function* () {
          yield* delay(700);
        });
        m.spawn(1, 'b', function* () {
          yield* delay(300);
          throw new Error('boom');
        });
      },
    };
    const m = new Machine({ cpus: 2, seed: 5 });
    scenario.setup(m);
    const r = m.run();
    const f = r.failure!;
    expect(f.cpu).toBe(1);
    expect(f.task).toBe('b');
    expect(f.seed).toBe(5);
    expect(f.policy).toBe('timed');
    expect(f.time).toBe(300);
    expect(r.steps).toBe(f.step);
    expect(f.step).toBe(3); // a's start, b's start, b's delay (which ends in the throw)
    expect(f.schedule).toBe(r.schedule);
    expect(f.cpus).toHaveLength(2);
    const again = replaySchedule(scenario, f.schedule);
    expect(again.failure?.message).toBe('Error: boom');
    expect(again.steps).toBe(3);
  });

  it("a deadlock is nobody's step: it reports the latest clock and every step taken", () => {
    const m = new Machine({ cpus: 2 });
    const wq = new WaitQueue('never');
    m.spawn(0, 'a', function* () {
      yield* delay(500);
      yield* block(wq);
    });
    m.spawn(1, 'b', function* () {
      yield* delay(200);
      yield* block(wq);
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('deadlock');
    expect(r.failure?.cpu).toBe(-1);
    expect(r.failure?.task).toBe(null);
    expect(r.failure?.time).toBe(500);
    expect(r.failure?.step).toBe(6);
    expect(r.steps).toBe(6);
  });
});

describe('machine construction and bookkeeping', () => {
  it('rejects a missing configuration, a bad step limit and an unknown policy', () => {
    expect(() => new Machine(null as never)).toThrow(
      new MachineConfigError('a machine needs a configuration object'),
    );
    expect(() => new Machine({ cpus: '2' as unknown as number })).toThrow(MachineConfigError);
    for (const maxSteps of [0, -5, 1.5]) {
      expect(() => new Machine({ cpus: 1, maxSteps })).toThrow(
        new MachineConfigError(`maxSteps must be a positive integer, got ${maxSteps}`),
      );
    }
    expect(new Machine({ cpus: 1, maxSteps: 1 }).maxSteps).toBe(1);
    expect(new Machine({ cpus: 1 }).maxSteps).toBe(50_000_000);
    expect(new Machine({ cpus: 1024 }).cpuCount).toBe(1024);
    for (const policy of [{}, { name: 'x', start() {} }, { name: 'x', choose() {} }]) {
      expect(() => new Machine({ cpus: 1, policy: policy as never })).toThrow(/^unknown policy/);
    }
    const m = new Machine({ cpus: 1 });
    expect(() => m.spawn(0, 'not a generator', (() => 5) as never)).toThrow(
      new MachineConfigError(
        "task 'not a generator' must be a generator (function* ... ) yielding machine effects",
      ),
    );
    expect(() => m.spawn(-1, 'x', function* () {})).toThrow(MachineConfigError);
    expect(() => m.spawn(0.5, 'x', function* () {})).toThrow(MachineConfigError);
    expect(m.allTasks()).toHaveLength(0);
  });

  it('physical lines: one per 64 bytes, the same object every time, in one frame and across frames and far above', () => {
    const m = new Machine({ cpus: 1 });
    const a = m.physLine(0x5000); // the frame's first line made
    expect(m.physLine(0x503f)).toBe(a);
    const b = m.physLine(0x5fc0); // a second line of the same frame
    expect(b).not.toBe(a);
    expect(m.physLine(0x5000)).toBe(a); // still the same after the frame's table of lines was made
    expect(m.physLine(0x5fff)).toBe(b);
    expect([a.label, b.label]).toEqual(['phys:0x5000', 'phys:0x5fc0']);
    expect(a.physicalAddress).toBe(0x5000);
    expect(m.line('x').physicalAddress).toBe(-1);
    const n = MemoryLine.numbered('page:0x', 0x1a2);
    expect([n.label, n.label, n.physicalAddress]).toEqual(['page:0x1a2', 'page:0x1a2', -1]);
    // A frame whose first line made is not its line 0: its second line is another line, and the first is found
    // again at its own place once the frame has its table of lines.
    const c1 = m.physLine(0x9040);
    const c2 = m.physLine(0x9080);
    expect(c2).not.toBe(c1);
    expect([c1.physicalAddress, c2.physicalAddress]).toEqual([0x9040, 0x9080]);
    expect(m.physLine(0x907f)).toBe(c1);
    expect(m.physLine(0x90bf)).toBe(c2);
    expect(m.physLine(0x9000)).not.toBe(c1);
    // The first lines of consecutive pages are distinct lines.
    const firsts = Array.from({ length: 64 }, (_, p) => m.physLine(0x100000 + p * 4096));
    expect(new Set(firsts).size).toBe(64);
    expect(firsts.every((l, p) => m.physLine(0x100000 + p * 4096 + 8) === l)).toBe(true);
    // A wild physical address builds no table up to it.
    const far = 2 ** 51 + 128;
    const f = m.physLine(far);
    expect(f.label).toBe('phys:0x8000000000080');
    expect(m.physLine(far + 63)).toBe(f);
    expect(m.physLine(far + 64)).not.toBe(f);
  });

  it("a task spawned by running code starts no earlier than its creator's clock", () => {
    const m = new Machine({ cpus: 2, cost });
    const seen: string[] = [];
    m.spawn(0, 'parent', function* () {
      yield* delay(500);
      m.spawn(1, 'child', function* () {
        seen.push(`child at ${yield* now()}`);
      });
      m.spawn(0, 'queued', function* () {
        seen.push(`queued at ${yield* now()}`);
      });
      yield* delay(100);
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual(['child at 500', 'queued at 2100']); // after the parent ends and a switch
    expect(m.allTasks().map((t) => t.name)).toEqual(['parent', 'child', 'queued']);
  });

  it('records schedules longer than its initial buffer exactly', () => {
    const scenario = {
      cpus: 3,
      setup(m: Machine) {
        const c = new Cell(0, 'c');
        for (let i = 0; i < 3; i++) {
          m.spawn(i, `t${i}`, function* () {
            for (let k = 0; k < 1500; k++) yield* c.store(k);
          });
        }
      },
    };
    const m = new Machine({ cpus: 3, policy: random(9) });
    scenario.setup(m);
    const r = m.run();
    expect(r.steps).toBe(3 * 1501);
    const again = replaySchedule(scenario, r.schedule);
    expect(again.traceHash).toBe(r.traceHash);
    expect(again.schedule).toBe(r.schedule);
  });
});

describe('IPI delivery, end checks and stuck spinners', () => {
  it('a busy CPU takes an IPI at the first step that begins once it has arrived', () => {
    const m = new Machine({ cpus: 2, cost });
    const seen: string[] = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {
        seen.push(`handler at ${yield* now()}`);
      });
      seen.push(`acked at ${yield* now()}`);
    });
    m.spawn(1, 'busy', function* () {
      for (let i = 0; i < 20; i++) yield* delay(100);
      seen.push(`busy done at ${yield* now()}`);
    });
    expect(m.run().ok).toBe(true);
    // Sent at 300, arrives at 1300: the busy CPU's clock reaches 1300 after 13 delays; the handler is entered
    // then (250 ns), and the busy task goes on 250 ns late.
    expect(seen).toEqual(['handler at 1550', 'acked at 1610', 'busy done at 2250']);
  });

  it('end checks run after every task finished, report as failures, and do not run after a failure', () => {
    const calls: string[] = [];
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 't', function* () {
      yield* delay(5);
      calls.push('task');
    });
    m.atEnd(() => calls.push('check 1'));
    m.atEnd(() => {
      throw new Error('invariant broken');
    });
    const r = m.run();
    expect(calls).toEqual(['task', 'check 1']);
    expect(r.failure?.kind).toBe('exception');
    expect(r.failure?.message).toBe('Error: invariant broken');
    expect(r.failure?.cpu).toBe(-1);
    expect(r.failure?.task).toBe(null);
    expect(r.failure?.step).toBe(2);

    const m2 = new Machine({ cpus: 1 });
    m2.spawn(0, 't', function* () {
      throw new Error('task failed');
    });
    let checked = false;
    m2.atEnd(() => {
      checked = true;
    });
    expect(m2.run().failure?.message).toBe('Error: task failed');
    expect(checked).toBe(false);
  });

  it('tells the policy how many steps a finished run took', () => {
    const finished: number[] = [];
    const policy = { ...random(3), finish: (steps: number) => finished.push(steps) };
    const m = new Machine({ cpus: 2, policy });
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `t${i}`, function* () {
        yield* delay(1);
      });
    }
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(r.steps).toBe(4);
    expect(finished).toEqual([4]);
  });

  it('reports a pure spin-wait nobody can end, but not while another CPU can still write the line', () => {
    const m = new Machine({ cpus: 2 });
    const flag = new Cell(0, 'flag');
    const wait = spinWaitEffect(flag.line, 'flag');
    m.spawn(0, 'spinner', function* () {
      yield readEffect(flag.line);
      while (flag.value === 0) yield wait;
    });
    m.spawn(1, 'late writer', function* () {
      yield* delay(200_000); // about 5,700 spin iterations
      yield* flag.store(1);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(r.spinsSkipped).toBeGreaterThan(5000);

    const m2 = new Machine({ cpus: 1 });
    const never = new Cell(0, 'never');
    const w2 = spinWaitEffect(never.line, 'never');
    m2.spawn(0, 'alone', function* () {
      yield readEffect(never.line);
      while (never.value === 0) yield w2;
    });
    const r2 = m2.run();
    expect(r2.failure?.kind).toBe('spin-forever');
    expect(r2.failure?.message).toBe(
      "no CPU is left to write the lines these pure spin-waits wait for (every other task has finished or sleeps): alone on CPU 0 spins on 'never'",
    );
    expect(r2.steps).toBeLessThan(200);
  });
});

describe('what a policy sees of the machine', () => {
  /** timed()'s rule through choose(), recording the view at every step for the enabled CPUs. */
  function recording(log: string[]): Policy {
    const rule = timed();
    return {
      name: 'recording',
      start() {},
      choose(enabled, count, view) {
        const parts = [`#${view.step} last=${view.lastCpu}`];
        for (let i = 0; i < count; i++) {
          const c = enabled[i];
          parts.push(
            `${c}:ready=${view.readyAt(c)},clock=${view.clock(c)}${view.isSpinning(c) ? ',spin' : ''}`,
          );
        }
        log.push(parts.join(' '));
        return rule.choose(enabled, count, view);
      },
    };
  }

  it('the ready time of a CPU includes a pending delay, and a spinning CPU says so', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, policy: recording(log) });
    m.spawn(0, 'a', function* () {
      yield* delay(100);
      yield* cpuRelax();
    });
    m.spawn(1, 'b', function* () {
      yield* delay(50);
    });
    expect(m.run().ok).toBe(true);
    expect(log).toEqual([
      '#0 last=-1 0:ready=0,clock=0 1:ready=0,clock=0',
      '#1 last=0 0:ready=100,clock=0 1:ready=0,clock=0',
      '#2 last=1 0:ready=100,clock=0 1:ready=50,clock=0',
      '#3 last=1 0:ready=100,clock=0',
      '#4 last=0 0:ready=100,clock=100,spin',
    ]);
  });

  it('an IPI is ready when it arrives, a handler at its clock, and the sender when the ack reaches it', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, policy: recording(log), cost });
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {
        yield* delay(10);
      });
    });
    expect(m.run().ok).toBe(true);
    expect(log).toEqual([
      '#0 last=-1 0:ready=0,clock=0',
      '#1 last=0 0:ready=0,clock=0',
      '#2 last=0 1:ready=1300,clock=0', // sent at 300, ipiLatency 1000
      '#3 last=1 1:ready=1550,clock=1550', // in the handler: its clock (its delay is not looked ahead)
      '#4 last=1 0:ready=1620,clock=300', // the ack at 1560, plus a line transfer
    ]);
  });

  it('a woken task is ready when the wake-up reaches it', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, policy: recording(log), cost });
    const wq = new WaitQueue('wq');
    m.spawn(0, 'sleeper', function* () {
      yield* block(wq);
    });
    m.spawn(1, 'waker', function* () {
      yield* delay(1000);
      yield* wake(wq);
    });
    expect(m.run().ok).toBe(true);
    expect(log.at(-1)).toBe('#5 last=1 0:ready=1060,clock=0');
  });
});

describe('the step limit and deadlocks under a choosing policy', () => {
  const livelock = (maxSteps: number) => ({
    cpus: 2,
    maxSteps,
    setup(m: Machine) {
      const flag = new Cell(false, 'flag');
      for (let i = 0; i < 2; i++) {
        m.spawn(i, `spinner${i}`, function* () {
          while (!(yield* flag.load())) yield* cpuRelax('flag');
        });
      }
    },
  });

  it('stops at the limit without asking the policy for a step beyond it, so the failure replays', () => {
    const m = new Machine({ cpus: 2, maxSteps: 50, policy: random(4) });
    livelock(50).setup(m);
    const r = m.run();
    expect(r.failure?.kind).toBe('step-limit');
    expect(r.failure?.message).toMatch(
      /^no end after 50 steps \(a livelock, or raise maxSteps\): CPU 0 next: /,
    );
    expect(r.steps).toBe(50);
    const again = replaySchedule(livelock(50), r.failure!.schedule);
    expect(again.failure?.kind).toBe('step-limit');
    expect(again.traceHash).toBe(r.traceHash);
  });

  it('reports a deadlock when no CPU can step', () => {
    const m = new Machine({ cpus: 2, policy: random(1) });
    const wq = new WaitQueue('never');
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `t${i}`, function* () {
        yield* block(wq);
      });
    }
    const r = m.run();
    expect(r.failure?.kind).toBe('deadlock');
    expect(r.failure?.message).toBe(
      "every task is blocked: t0 on CPU 0 sleeps on 'never'; t1 on CPU 1 sleeps on 'never'",
    );
    expect(r.steps).toBe(4);
  });
});

describe('more of what a run reports', () => {
  it('a task keeps its result and ends done; a thrown non-error is reported as an Error', () => {
    const m = new Machine({ cpus: 1 });
    const t = m.spawn(0, 'answer', function* () {
      yield* delay(1);
      return 42;
    });
    expect(m.run().ok).toBe(true);
    expect(t.state).toBe('done');
    expect(t.result).toBe(42);
    const m2 = new Machine({ cpus: 1 });
    m2.spawn(0, 'thrower', function* () {
      yield* delay(1);
      throw 'a string';
    });
    const f = m2.run().failure;
    expect(f?.kind).toBe('exception');
    expect(f?.message).toBe('Error: a string');
  });

  it('labels the trace and the last events of IPIs, blocks and memory accesses', () => {
    const m = new Machine({ cpus: 2, trace: true, historyLength: 3 });
    const c = new Cell(0, 'counter');
    const wq = new WaitQueue('wq');
    m.spawn(0, 'sender', function* () {
      yield* c.store(1);
      yield* sendIpi(
        [1],
        function* (cpu) {
          const s = yield* self();
          kassertLike(s.task === null && cpu === 1);
        },
        true,
        'flush_tlb',
      );
      yield* sendIpi([1], function* () {});
      yield* block(wq, () => true, 'waiting for nothing');
      yield* block(wq, () => true);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    const what = r.trace!.map((e) => `${e.cpu} ${e.kind} ${e.label} (${e.task})`);
    expect(what).toEqual([
      '0 self start (sender)',
      '0 write counter (sender)',
      '0 ipi flush_tlb -> 1 (sender)',
      '1 ipi irq: flush_tlb from CPU 0 (idle)', // the entry is charged to what CPU 1 was running
      '0 ipi ipi -> 1 (sender)',
      '1 ipi irq: ipi from CPU 0 (idle)',
      '0 block waiting for nothing (sender)',
      '0 block wq (sender)',
    ]);
    const m2 = new Machine({ cpus: 1, historyLength: 3 });
    m2.spawn(0, 't', function* () {
      for (let i = 0; i < 10; i++) yield* delay(1, `d${i}`);
      throw new Error('x');
    });
    expect(m2.run().failure?.lastEvents.map((e) => e.what)).toEqual(['delay d7', 'delay d8', 'delay d9']);
    const m3 = new Machine({ cpus: 1 });
    m3.spawn(0, 't', function* () {
      for (let i = 0; i < 30; i++) yield* delay(1);
      throw new Error('x');
    });
    expect(m3.run().failure?.lastEvents).toHaveLength(24); // the default
  });

  it('an IPI handler sees the task it interrupted', () => {
    const m = new Machine({ cpus: 2 });
    const seen: Array<string | null> = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {
        seen.push((yield* self()).task?.name ?? null);
      });
    });
    m.spawn(1, 'busy', function* () {
      for (let i = 0; i < 10; i++) yield* delay(1000);
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual(['busy']);
  });

  it('a pure spin-wait in an IPI handler runs step by step until the line is written', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const flag = new Cell(0, 'flag');
    const wait = spinWaitEffect(flag.line, 'flag');
    const seen: number[] = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi(
        [1],
        function* () {
          yield readEffect(flag.line);
          while (flag.value === 0) yield wait;
          seen.push(yield* now());
        },
        false,
      );
      yield* delay(3000);
      yield* flag.store(1);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThan(3000);
    const handler = r.trace!.filter((e) => e.task === 'irq');
    const spins = handler.filter((e) => e.kind === 'spin').length;
    const reads = handler.filter((e) => e.kind === 'read').length;
    expect(spins).toBeGreaterThan(10);
    expect(reads).toBe(spins + 1); // the first read, then a read after every spin
    expect(r.spinsSkipped).toBe(0); // the handler's code runs after every iteration
  });

  it('a loop declared pure that does something else with the line unchanged fails with impure-spin', () => {
    const m = new Machine({ cpus: 2 });
    const flag = new Cell(0, 'flag');
    const other = new Cell(0, 'other');
    const wait = spinWaitEffect(flag.line, 'flag');
    m.spawn(0, 'impure', function* () {
      yield readEffect(flag.line);
      while (flag.value === 0) {
        yield wait;
        yield* other.store(1);
      }
    });
    m.spawn(1, 'late', function* () {
      yield* delay(10_000);
      yield* flag.store(1);
    });
    const f = m.run().failure;
    expect(f?.kind).toBe('impure-spin');
    expect(f?.task).toBe('impure');
    expect(f?.message).toMatch(/^task impure on CPU 0 declared a pure spin-wait on 'flag'/);
  });

  it('checks its configuration object and defaults to the timed policy', () => {
    expect(() => new Machine(5 as never)).toThrow(
      new MachineConfigError('a machine needs a configuration object'),
    );
    expect(new Machine({ cpus: 1 }).policy.name).toBe('timed');
    expect(new Machine({ cpus: 1 }).seed).toBe(0);
    let starts = 0;
    const policy = { ...random(1), start: () => starts++ };
    const m = new Machine({ cpus: 1, policy });
    m.spawn(0, 't', function* () {
      yield* delay(1);
    });
    m.run();
    expect(starts).toBe(1);
  });
});

function kassertLike(cond: boolean): void {
  if (!cond) throw new Error('unexpected handler context');
}

describe('seeded variation, spawning and spin-forever timing', () => {
  /** Four CPUs ready at the same time: the order in which they get past a delay. */
  function tieOrder(seed: number, policy?: Policy): string {
    const m = new Machine({ cpus: 4, seed, policy });
    const order: number[] = [];
    for (let i = 0; i < 4; i++) {
      m.spawn(i, `t${i}`, function* () {
        yield* delay(100);
        order.push(i);
      });
    }
    expect(m.run().ok).toBe(true);
    return order.join('');
  }

  it('under timed, seed 0 breaks ties by CPU id and other seeds by a fixed seeded permutation', () => {
    expect(tieOrder(0)).toBe('0123');
    // These orders are part of every seeded timed run (and of the recorded fingerprints): they only change
    // if the permutation changes.
    expect([1, 4, 5].map((s) => tieOrder(s))).toEqual(['1032', '1302', '0321']);
    // A policy that chooses by itself is not affected by the permutation.
    const viaChoose = (): Policy => ({ name: 'timed', start() {}, choose: timed().choose });
    expect([0, 1, 4, 5].map((s) => tieOrder(s, viaChoose()))).toEqual(['0123', '0123', '0123', '0123']);
  });

  it('a seed other than 0 jitters memory latencies under every policy; seed 0 charges them exactly', () => {
    const missTime = (seed: number) => {
      const m = new Machine({ cpus: 1, seed, policy: random(1) });
      let t = 0;
      m.spawn(0, 'reader', function* () {
        for (let i = 0; i < 10; i++) yield* read(new MemoryLine(`l${i}`));
        t = yield* now();
      });
      expect(m.run().ok).toBe(true);
      return t;
    };
    expect(missTime(0)).toBe(850); // ten DRAM reads of 85 ns
    const seeded = [1, 2, 3, 4].map(missTime);
    for (const t of seeded) {
      expect(t).toBeGreaterThan(850);
      expect(t).toBeLessThanOrEqual(850 + 10 * 10); // at most 85 >>> 3 = 10 ns each
    }
    expect(missTime(3)).toBe(seeded[2]);
  });

  it('spawns a generator object as well as a generator function, also during the first step', () => {
    const m = new Machine({ cpus: 2 });
    const seen: string[] = [];
    function* child(name: string): Kernel<void> {
      seen.push(`${name} at ${yield* now()}`);
    }
    m.spawn(
      0,
      'parent',
      (function* () {
        m.spawn(1, 'early', child('early')); // during the run's first step
        yield* delay(10);
      })(),
    );
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual(['early at 0']);
  });

  it('makes a new memory line per call, with its label', () => {
    const m = new Machine({ cpus: 1 });
    const a = m.line('mm->mmap_lock');
    expect(a).toBeInstanceOf(MemoryLine);
    expect(a.label).toBe('mm->mmap_lock');
    expect(m.line('mm->mmap_lock')).not.toBe(a);
  });

  it('the first physical line looked up is the right one', () => {
    const m = new Machine({ cpus: 1 });
    expect(m.physLine(64).label).toBe('phys:0x40');
    expect(m.physLine(64)).toBe(m.physLine(127));
  });

  it('checks for a spin nobody can end after 64 + 8 per CPU consecutive steps that ran no kernel code', () => {
    for (const cpus of [2, 3]) {
      const m = new Machine({ cpus });
      const never = new Cell(0, 'never');
      const w = spinWaitEffect(never.line, 'never');
      m.spawn(0, 'alone', function* () {
        yield* delay(5);
        yield readEffect(never.line);
        while (never.value === 0) yield w;
      });
      const r = m.run();
      expect(r.failure?.kind).toBe('spin-forever');
      // Steps 0-4 run the task's code (start, delay, read, spin, and the read after which the code shows
      // that it only spins again); from step 5 on nothing runs code, and the check fires at the
      // (64 + 8 * cpus + 1)-th such step.
      expect(r.failure?.step).toBe(5 + 64 + 8 * cpus + 1);
    }
  });
});

describe('readiness, acknowledgements and yields', () => {
  /** timed()'s rule through choose(), logging the ready time and clock of every enabled CPU at every step. */
  function logging(log: string[]): Policy {
    const rule = timed();
    return {
      name: 'logging',
      start() {},
      choose(enabled, count, view) {
        const parts = [`#${view.step}`];
        for (let i = 0; i < count; i++) {
          const c = enabled[i];
          parts.push(`${c}:${view.readyAt(c)}/${view.clock(c)}`);
        }
        log.push(parts.join(' '));
        return rule.choose(enabled, count, view);
      },
    };
  }

  it('a CPU whose IPI arrived while it was busy is ready at its own clock; in the handler, at the handler clock', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, policy: logging(log), cost });
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {
        yield* delay(10);
      });
    });
    m.spawn(1, 'busy', function* () {
      for (let i = 0; i < 3; i++) yield* delay(1000);
    });
    expect(m.run().ok).toBe(true);
    expect(log).toEqual([
      '#0 0:0/0 1:0/0',
      '#1 0:0/0 1:0/0',
      '#2 1:0/0', // the sender waits for the ack
      '#3 1:1000/0',
      '#4 1:2000/1000', // the IPI (arrived at 1300) waits for the step boundary
      '#5 1:2000/2000', // delivered at 2000, not at its arrival
      '#6 1:2250/2250', // the handler's delay is not looked ahead, nor the task's pending one
      '#7 0:2320/300 1:3260/2260', // the ack (2260 + 60); the task's delay resumes after the handler
      '#8 1:3260/2260',
    ]);
  });

  it('a woken task is ready at its own clock once it has run past its wake-up', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 2, policy: logging(log), cost });
    const wq = new WaitQueue('wq');
    m.spawn(0, 'sleeper', function* () {
      yield* block(wq);
      yield* delay(10);
      yield* delay(10);
    });
    m.spawn(1, 'waker', function* () {
      yield* delay(1000);
      yield* wake(wq);
    });
    expect(m.run().ok).toBe(true);
    expect(log.slice(-3)).toEqual(['#5 0:1060/0', '#6 0:1070/1060', '#7 0:1080/1070']);
  });

  it('a policy may ask for the ready time of any CPU, also one with nothing to do', () => {
    const asked: number[] = [];
    const rule = timed();
    const policy: Policy = {
      name: 'curious',
      start() {},
      choose(enabled, count, view) {
        for (let c = 0; c < view.cpuCount; c++) asked.push(view.readyAt(c));
        return rule.choose(enabled, count, view);
      },
    };
    const m = new Machine({ cpus: 3, policy });
    m.spawn(0, 't', function* () {
      yield* delay(7);
    });
    expect(m.run().ok).toBe(true);
    expect(asked).toEqual([0, 0, 0, 7, 0, 0]);
  });

  it('the sender resumes when the last acknowledgement arrives, whichever target finishes last', () => {
    // Highest CPU first: CPU 2 finishes its handler (at 1850) before CPU 1 (at 1550) in step order.
    const highest: Policy = { name: 'highest', start() {}, choose: (enabled, count) => enabled[count - 1] };
    const m = new Machine({ cpus: 3, policy: highest, cost });
    let acked = 0;
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1, 2], function* () {});
      acked = yield* now();
    });
    expect(m.run().ok).toBe(true);
    expect(acked).toBe(1910);
  });

  it('a sender that takes an IPI while it waits never goes back in time, nor is ready before its clock', () => {
    const log: string[] = [];
    const m = new Machine({ cpus: 3, cost, policy: logging(log) });
    const seen: number[] = [];
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {});
      seen.push(yield* now());
    });
    m.spawn(2, 'other', function* () {
      yield* sendIpi(
        [0],
        function* () {
          yield* delay(10_000); // CPU 0's handler runs long past CPU 1's ack
        },
        false,
      );
    });
    expect(m.run().ok).toBe(true);
    expect(seen[0]).toBeGreaterThanOrEqual(10_000);
    // No CPU is ever ready before its own clock.
    for (const line of log) {
      for (const [, ready, clock] of line.matchAll(/\d+:(\d+)\/(\d+)/g)) {
        expect(Number(ready), line).toBeGreaterThanOrEqual(Number(clock));
      }
    }
  });

  it('yielding with nobody else on the CPU costs nothing; the trace shows a yield only when it switches', () => {
    const m = new Machine({ cpus: 1, cost, trace: true });
    const seen: number[] = [];
    m.spawn(0, 'alone', function* () {
      yield* yieldCpu();
      seen.push(yield* now());
    });
    const r = m.run();
    expect(seen).toEqual([0]);
    expect(r.trace!.map((e) => e.kind)).toEqual(['self']);
    const m2 = new Machine({ cpus: 1, cost, trace: true });
    for (const n of ['A', 'B']) {
      m2.spawn(0, n, function* () {
        yield* yieldCpu();
      });
    }
    const r2 = m2.run();
    expect(r2.trace!.filter((e) => e.kind === 'yield').map((e) => [e.task, e.label])).toEqual([
      ['A', ''],
      ['B', ''],
    ]);
  });

  it('counts the spin-wait iterations whose code it skipped', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const flag = new Cell(0, 'flag');
    const wait = spinWaitEffect(flag.line, 'flag');
    m.spawn(0, 'spinner', function* () {
      yield readEffect(flag.line);
      while (flag.value === 0) yield wait;
    });
    m.spawn(1, 'writer', function* () {
      yield* delay(2000);
      yield* flag.store(1);
    });
    const r = m.run();
    expect(r.ok).toBe(true);
    const spins = r.trace!.filter((e) => e.kind === 'spin').length;
    expect(spins).toBeGreaterThan(20);
    // Every iteration ends with a read; the code runs after the first two (to see that it only spins
    // again) and after the read that sees the store: the others are skipped.
    expect(r.spinsSkipped).toBe(spins - 2);
  });

  it('an error thrown by the policy itself is not swallowed', () => {
    const broken: Policy = {
      name: 'broken',
      start() {},
      choose() {
        throw new TypeError('policy bug');
      },
    };
    const m = new Machine({ cpus: 1, policy: broken });
    m.spawn(0, 't', function* () {});
    expect(() => m.run()).toThrow(new TypeError('policy bug'));
  });

  it('reports the latest clock of any CPU as the run time', () => {
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 'long', function* () {
      yield* delay(500);
    });
    m.spawn(1, 'short', function* () {
      yield* delay(100);
    });
    const r = m.run();
    expect(r.clocks).toEqual([500, 100]);
    expect(r.time).toBe(500);
  });
});

describe('labels, wake-ups, preemption and failures on CPU 0', () => {
  it('a lone task passing the tick is not switched out', () => {
    const m = new Machine({ cpus: 1, cost: { ...cost, tick: 1000 } });
    const seen: number[] = [];
    m.spawn(0, 'alone', function* () {
      yield* delay(1000);
      seen.push(yield* now());
      yield* delay(1000);
      seen.push(yield* now());
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual([1000, 2000]);
  });

  it('labels each effect in the trace', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const wq = new WaitQueue('wq');
    m.spawn(0, 't', function* () {
      yield* cpuRelax('flag');
      yield* cpuRelax();
      yield* fence();
      yield* localIrqDisable();
      yield* localIrqEnable();
      yield* localIrqRestore(true);
      yield* delay(5, 'zero page');
      yield* delay(5);
      yield* wake(wq);
      yield* sendIpi([1], function* () {}, false);
    });
    const r = m.run();
    expect(r.trace!.filter((e) => e.cpu === 0).map((e) => `${e.kind}:${e.label}`)).toEqual([
      'self:start',
      'spin:flag',
      'spin:',
      'fence:',
      'irq-disable:',
      'irq-enable:',
      'irq-restore:',
      'delay:zero page',
      'delay:',
      'wake:wq (0)',
      'ipi:ipi -> 1',
    ]);
    const m2 = new Machine({ cpus: 3, trace: true });
    m2.spawn(0, 's', function* () {
      yield* sendIpi([1, 2], function* () {}, false, 'tlb');
    });
    expect(m2.run().trace!.find((e) => e.kind === 'ipi')?.label).toBe('tlb -> 1,2');
  });

  it('an IPI to CPU 0 is fine; a bad target names the sending task; an IPI to nobody costs nothing', () => {
    const m = new Machine({ cpus: 2 });
    m.spawn(1, 's', function* () {
      yield* sendIpi([0], function* () {});
    });
    expect(m.run().ok).toBe(true);
    const m2 = new Machine({ cpus: 2 });
    m2.spawn(0, 'sender', function* () {
      yield* sendIpi([5], function* () {});
    });
    expect(m2.run().failure?.task).toBe('sender');
    const m3 = new Machine({ cpus: 2 });
    const seen: number[] = [];
    m3.spawn(0, 's', function* () {
      yield* sendIpi([], function* () {});
      seen.push(yield* now());
    });
    const r3 = m3.run();
    expect(seen).toEqual([0]);
    expect(r3.steps).toBe(3); // start, the IPI, and the now() that ends the task
  });

  it('says what sleeping in the wrong context was', () => {
    const wq = new WaitQueue('wq');
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 't', function* () {
      yield* localIrqDisable();
      yield* block(wq);
    });
    expect(m.run().failure?.message).toBe("task t on CPU 0 sleeps on 'wq' with interrupts disabled");
    const m2 = new Machine({ cpus: 1 });
    m2.spawn(0, 't', function* () {
      yield* preemptDisable();
      yield* block(wq);
    });
    expect(m2.run().failure?.kind).toBe('might-sleep');
  });

  it('names several stuck spinners in a spin-forever report', () => {
    const m = new Machine({ cpus: 2 });
    const never = new Cell(0, 'never');
    const w = spinWaitEffect(never.line, 'never');
    for (const cpu of [0, 1]) {
      m.spawn(cpu, `s${cpu}`, function* () {
        yield readEffect(never.line);
        while (never.value === 0) yield w;
      });
    }
    expect(m.run().failure?.message).toMatch(/: s0 on CPU 0 spins on 'never'; s1 on CPU 1 spins on 'never'$/);
  });

  it('a bad delay or a non-effect in an IPI handler is blamed on the handler', () => {
    for (const handler of [
      () => delay(-1),
      function* (): Kernel<void> {
        yield 7 as unknown as Effect;
      },
    ]) {
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 's', function* () {
        yield* sendIpi([1], handler);
      });
      const f = m.run().failure;
      expect(f?.kind).toBe('exception');
      expect(f?.task).toBe('irq');
    }
  });

  it('self() in a task names the task and says it is not in interrupt context', () => {
    const m = new Machine({ cpus: 2 });
    const seen: unknown[] = [];
    const t = m.spawn(1, 'me', function* () {
      const s = yield* self();
      seen.push(s.cpu, s.task, s.inIrq);
    });
    m.run();
    expect(seen).toEqual([1, t, false]);
  });

  it('self() answers for the task, context and interrupt state at the time of the call, and the same answer is shared while they hold', () => {
    const m = new Machine({ cpus: 2 });
    type Seen = { who: string; task: string | null; inIrq: boolean; irqsEnabled: boolean; cpu: number };
    const seen: Seen[] = [];
    const answers: object[] = [];
    function* look(who: string): Kernel<void> {
      const s = yield* self();
      answers.push(s);
      seen.push({ who, task: s.task?.name ?? null, inIrq: s.inIrq, irqsEnabled: s.irqsEnabled, cpu: s.cpu });
    }
    m.spawn(0, 'sender', function* () {
      yield* delay(500);
      yield* sendIpi([1], () => look('handler'));
    });
    m.spawn(1, 'a', function* () {
      yield* look('a');
      yield* look('a again');
      yield* yieldCpu(); // to b, on the same CPU
      // The IPI (sent at 500) is taken at a step after this delay; then the handler's answer is cached.
      yield* delay(3000);
      yield* localIrqDisable();
      yield* look('a, irqs off after the handler');
      yield* localIrqEnable();
    });
    m.spawn(1, 'b', function* () {
      yield* look('b');
      yield* yieldCpu();
    });
    expect(m.run().ok).toBe(true);
    expect(seen).toEqual([
      { who: 'a', task: 'a', inIrq: false, irqsEnabled: true, cpu: 1 },
      { who: 'a again', task: 'a', inIrq: false, irqsEnabled: true, cpu: 1 },
      { who: 'b', task: 'b', inIrq: false, irqsEnabled: true, cpu: 1 },
      { who: 'handler', task: 'a', inIrq: true, irqsEnabled: false, cpu: 1 },
      { who: 'a, irqs off after the handler', task: 'a', inIrq: false, irqsEnabled: false, cpu: 1 },
    ]);
    // Unchanged task, context and interrupt state: the same (immutable) answer, nothing allocated per call.
    expect(answers[1]).toBe(answers[0]);
    expect(answers[2]).not.toBe(answers[0]);
  });

  it('every yieldCpu hands the CPU over, not only the first', () => {
    const m = new Machine({ cpus: 1 });
    const log: string[] = [];
    for (const n of ['A', 'B']) {
      m.spawn(0, n, function* () {
        for (let i = 1; i <= 3; i++) {
          log.push(`${n}${i}`);
          yield* yieldCpu();
        }
      });
    }
    expect(m.run().ok).toBe(true);
    expect(log).toEqual(['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
  });

  it('a task woken onto a busy CPU waits in its runqueue; the running task goes on', () => {
    const m = new Machine({ cpus: 2 });
    const wq = new WaitQueue('wq');
    const s = m.spawn(0, 'sleeper', function* () {
      yield* block(wq);
    });
    const a = m.spawn(0, 'runner', function* () {
      for (let i = 0; i < 4; i++) yield* delay(5000);
    });
    m.spawn(1, 'waker', function* () {
      yield* delay(1000);
      yield* wake(wq);
    });
    expect(m.run().ok).toBe(true);
    expect([s.state, a.state]).toEqual(['done', 'done']);
  });

  it('a memory layer may stop the run from inside kernel code with its own failure kind', () => {
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'walker', function* () {
      yield* delay(3);
      m.fail('bad-pte', 'reserved bit set in PTE', 0, 'walker');
    });
    const f = m.run().failure;
    expect(f?.kind).toBe('bad-pte');
    expect(f?.message).toBe('reserved bit set in PTE');
  });

  it("a failure on CPU 0 counts its step and takes CPU 0's clock", () => {
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 'a', function* () {
      yield* delay(300);
      throw new Error('boom');
    });
    m.spawn(1, 'b', function* () {
      yield* delay(700);
    });
    const r = m.run();
    expect(r.failure?.cpu).toBe(0);
    expect(r.failure?.time).toBe(300);
    expect(r.failure?.step).toBe(3);
    expect(r.steps).toBe(3);
  });

  it('gives a fixed run the same trace hash as always', () => {
    // A pin: any change to what a run does, when, or the hash itself changes this value.
    const m = new Machine({ cpus: 2 });
    const c = new Cell(0, 'c');
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `t${i}`, function* () {
        yield* c.store(i);
        yield* cpuRelax();
        yield* c.load();
      });
    }
    expect(m.run().traceHash).toBe('46e65f71');
  });
});

describe("the timed policy's ready heap steps exactly as its rule through the general loop", () => {
  /**
   * The same timed rule (earliest ready CPU, ties to the lowest id) without `discreteEvent`: the machine then
   * asks `choose()` at every step and recomputes each CPU's state through the general loop, without the heap,
   * its fast path for a step that touched only its own CPU, or the ring of quiet spinners.
   */
  const general: Policy = { ...timed(), name: 'timed-general', discreteEvent: false };

  /** With a free PAUSE the machine builds no ring of quiet spinners: each scenario runs both ways. */
  const costs = [cost, { ...cost, pause: 0 }];

  function both(cpus: number, setup: (m: Machine) => void) {
    let heap: RunResult | null = null;
    for (const c of costs) heap = bothAt(cpus, setup, c);
    return heap!;
  }

  function bothAt(cpus: number, setup: (m: Machine) => void, c: typeof cost) {
    const runs = [timed(), general].map((policy) => {
      const m = new Machine({ cpus, cost: c, policy, trace: true });
      setup(m);
      return m.run();
    });
    for (const r of runs) expect(r.failure).toBeNull();
    const [heap, loop] = runs;
    expect(heap.schedule).toBe(loop.schedule);
    expect(heap.trace).toEqual(loop.trace);
    expect([heap.traceHash, heap.clocks, heap.time, heap.steps]).toEqual([
      loop.traceHash,
      loop.clocks,
      loop.time,
      loop.steps,
    ]);
    return heap;
  }

  /** A CPU that keeps stepping, every `ns`, so that any step taken out of time order shows in the order. */
  function* ticker(line: MemoryLine, n: number, ns: number): Kernel<void> {
    for (let i = 0; i < n; i++) {
      yield* delay(ns);
      yield* read(line);
    }
  }

  it('an IPI that arrives while interrupts are off is taken when they come back on, not after the next delay', () => {
    const a = new MemoryLine('a');
    const b = new MemoryLine('b');
    const r = both(3, (m) => {
      m.spawn(0, 'irqs-off', function* () {
        yield* localIrqDisable();
        for (let i = 0; i < 6; i++) yield* delay(400);
        yield* localIrqEnable();
        yield* delay(3000);
        yield* write(a);
      });
      m.spawn(1, 'sender', function* () {
        yield* delay(100);
        yield* sendIpi(
          [0],
          function* () {
            yield* write(b);
            yield* delay(70);
            yield* read(a);
          },
          false,
        );
        yield* ticker(b, 30, 150);
      });
      m.spawn(2, 'ticker', () => ticker(a, 60, 70));
    });
    expect(r.trace!.some((e) => e.kind === 'ipi')).toBe(true);
  });

  it('a handler runs at its own clock, not at the ready time of the delay its interrupted task has pending', () => {
    const a = new MemoryLine('a');
    both(3, (m) => {
      m.spawn(0, 'delays', function* () {
        for (let i = 0; i < 8; i++) yield* delay(900);
      });
      m.spawn(1, 'sender', function* () {
        yield* delay(50);
        yield* sendIpi(
          [0],
          function* () {
            for (let i = 0; i < 4; i++) {
              yield* write(a);
              yield* delay(40);
            }
          },
          false,
        );
      });
      m.spawn(2, 'ticker', () => ticker(a, 80, 45));
    });
  });

  it('a device interrupt and a sender waiting for its acknowledgement step in time order', () => {
    const a = new MemoryLine('a');
    both(3, (m) => {
      m.spawn(0, 'device', function* () {
        yield* raiseDeviceIrq(500, function* () {
          yield* write(a);
          yield* delay(60);
          yield* write(a);
        });
        for (let i = 0; i < 10; i++) yield* delay(300);
      });
      m.spawn(1, 'waiter', function* () {
        yield* delay(20);
        yield* sendIpi([2], function* () {
          yield* read(a);
        });
        yield* ticker(a, 10, 90);
      });
      m.spawn(2, 'busy', () => ticker(a, 40, 110));
    });
  });

  it('a pure spin-wait, a sleeper woken by another CPU and a second task on a CPU step in time order', () => {
    both(3, (m) => {
      // Fresh state for each of the two runs (a line counts its stores over every machine).
      const flag = new MemoryLine('flag');
      const a = new MemoryLine('a');
      const wq = new WaitQueue('wq');
      let done = false;
      let sleeper: Task | null = null;
      m.spawn(0, 'spinner', function* () {
        const w = spinWaitEffect(flag, 'wait');
        yield readEffect(flag);
        while (flag.version === 0) yield w;
        yield* write(a);
      });
      sleeper = m.spawn(1, 'sleeper', function* () {
        yield* block(wq, () => done);
        yield* ticker(a, 5, 80);
      });
      m.spawn(1, 'second', () => ticker(a, 6, 120));
      m.spawn(2, 'writer', function* () {
        yield* ticker(a, 8, 100);
        yield* write(flag);
        done = true;
        yield* wakeTask(sleeper!);
        yield* ticker(a, 8, 60);
      });
    });
  });
  it('a sender that takes an IPI or a device interrupt while it waits for its own acknowledgement resumes only when the ack arrives', () => {
    // CPU 2's IPI reaches the waiting sender at a time swept over its wait (before or after the device's
    // interrupt); after each handler the sender must still wait for CPU 1, whose interrupts are off.
    for (let at = 0; at <= 3000; at += 250) {
      const resumed: number[] = [];
      const r = both(3, (m) => {
        const a = new MemoryLine('a');
        m.spawn(0, 'sender', function* () {
          // A device interrupt of this CPU's own also comes during the wait (its handler acknowledges to this
          // CPU alone, so nothing else is touched when it ends).
          yield* raiseDeviceIrq(500, function* () {
            yield* read(a);
            yield* delay(30);
          });
          yield* sendIpi([1], function* () {
            yield* write(a);
          });
          resumed.push(yield* now());
          yield* ticker(a, 4, 50);
        });
        m.spawn(1, 'irqs-off', function* () {
          yield* localIrqDisable();
          for (let i = 0; i < 8; i++) yield* delay(500);
          yield* localIrqEnable();
          yield* delay(100);
        });
        m.spawn(2, 'other', function* () {
          yield* delay(at);
          yield* sendIpi(
            [0],
            function* () {
              yield* read(a);
              yield* delay(20);
            },
            false,
          );
          yield* ticker(a, 20, 80);
        });
      });
      // CPU 1 takes the IPI after 4000 ns of interrupts off: the sender goes on after that and its ack.
      expect(resumed.length).toBe(4); // two cost models, each run by the heap and by the general loop
      for (const t of resumed) expect(t).toBeGreaterThan(4000);
      expect(r.ok).toBe(true);
    }
  });

  it('a task woken onto a CPU that is in an interrupt handler starts no earlier than its wake-up reaches it', () => {
    // The wake-up is swept across the handler, so that it lands before, during and after each of its steps.
    for (let at = 1000; at <= 1700; at += 10) {
      both(4, (m) => {
        const wq = new WaitQueue('wq');
        const a = new MemoryLine('a');
        let go = false;
        let sleeper: Task | null = null;
        sleeper = m.spawn(1, 'sleeper', function* () {
          // The device's interrupt comes to this CPU while the task sleeps (its handler acknowledges to this
          // CPU itself, so the handler's last step touches no other CPU).
          yield* raiseDeviceIrq(1000, function* () {
            for (let i = 0; i < 6; i++) yield* delay(40);
          });
          yield* block(wq, () => go);
          yield* write(a);
          yield* delay(30);
          yield* write(a);
        });
        m.spawn(0, 'ticker', () => ticker(a, 40, 50));
        // A CPU that steps every few ns on a line of its own, so that a step taken early shows in the order.
        const b = new MemoryLine('b');
        m.spawn(3, 'dense', () => ticker(b, 700, 2));
        m.spawn(2, 'waker', function* () {
          yield* delay(at);
          go = true;
          yield* wakeTask(sleeper!);
          yield* ticker(a, 30, 15);
        });
      });
    }
  });
});
