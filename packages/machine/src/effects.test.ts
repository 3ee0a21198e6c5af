import { describe, expect, it } from 'vitest';
import { defaultCostModel } from './cost-model.js';
import {
  block,
  cpuRelax,
  delay,
  delayEffect,
  EffectKind,
  effectKindNames,
  fence,
  irqDisableEffect,
  irqRestoreEffect,
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
  rmw,
  rmwEffect,
  rmwLoopEffect,
  type SelfInfo,
  self,
  selfEffect,
  sendIpi,
  spinWait,
  spinWaitEffect,
  wake,
  wakeTask,
  write,
  writeEffect,
  yieldCpu,
} from './effects.js';
import { Machine, type RunResult } from './machine.js';
import { MemoryLine } from './memory-line.js';
import { WaitQueue } from './wait-queue.js';

/**
 * The effect constructors and helpers of effects.ts, judged by what a run shows: the trace (kind, label,
 * duration), the values the machine hands back, the clocks, and who runs when. Each helper's doc comment
 * promises one of these; a helper that yielded the wrong effect, label or argument would show here.
 */

type Body = () => Kernel<unknown>;

/** Runs tasks (one per entry, on CPU = index) on a traced machine and returns the result. */
function runTraced(bodies: readonly Body[], cpus = bodies.length): RunResult {
  const m = new Machine({ cpus, trace: true });
  for (const [i, b] of bodies.entries()) m.spawn(i, `t${i}`, b);
  return m.run();
}

/**
 * The trace of a run as `kind label` strings, for the task named `task` (default `t0`), without the task's
 * start (a `self start` event the machine records when it first runs the task).
 */
function events(r: RunResult, task = 't0'): string[] {
  return r
    .trace!.filter((e) => e.task === task && !(e.kind === 'self' && e.label === 'start'))
    .map((e) => `${e.kind} ${e.label}`);
}

describe('memory effects', () => {
  it('read, write and rmw are one step each of their kind, labelled by the line unless given a label', () => {
    const line = new MemoryLine('lock word');
    const r = runTraced([
      function* () {
        yield* read(line);
        yield* read(line, 'peek');
        yield* write(line);
        yield* write(line, 'release');
        yield* rmw(line);
        yield* rmw(line, 'xchg');
      },
    ]);
    expect(r.ok).toBe(true);
    expect(events(r)).toEqual([
      'read lock word',
      'read peek',
      'write lock word',
      'write release',
      'rmw lock word',
      'rmw xchg',
    ]);
    // Two stores and two RMWs changed the line; only the RMWs count as locked.
    expect(line.version).toBe(4);
    expect(line.rmws).toBe(2);
  });

  it('readEffect, writeEffect and rmwEffect yielded directly do what read, write and rmw do', () => {
    const line = new MemoryLine('counter');
    const r = runTraced([
      function* () {
        yield readEffect(line);
        yield readEffect(line, 'peek');
        yield writeEffect(line);
        yield writeEffect(line, 'set');
        yield rmwEffect(line);
        yield rmwEffect(line, 'inc');
      },
    ]);
    expect(r.ok).toBe(true);
    expect(events(r)).toEqual([
      'read counter',
      'read peek',
      'write counter',
      'write set',
      'rmw counter',
      'rmw inc',
    ]);
    expect(line.version).toBe(4);
    expect(line.rmws).toBe(2);
  });

  it('an unlabelled effect is the line’s one shared object (no allocation per access); a labelled one is new', () => {
    const line = new MemoryLine('hot');
    expect(readEffect(line)).toBe(line.readEffect);
    expect(writeEffect(line)).toBe(line.writeEffect);
    expect(rmwEffect(line)).toBe(line.rmwEffect);
    expect(read(line).next().value).toBe(line.readEffect);
    expect(write(line).next().value).toBe(line.writeEffect);
    expect(rmw(line).next().value).toBe(line.rmwEffect);
    expect(readEffect(line, 'a')).toEqual({ kind: EffectKind.Read, line, label: 'a' });
    expect(writeEffect(line, 'b')).toEqual({ kind: EffectKind.Write, line, label: 'b' });
    expect(rmwEffect(line, 'c')).toEqual({ kind: EffectKind.Rmw, line, label: 'c' });
    expect(read(line, 'a').next().value).toEqual({ kind: EffectKind.Read, line, label: 'a' });
    expect(write(line, 'b').next().value).toEqual({ kind: EffectKind.Write, line, label: 'b' });
    expect(rmw(line, 'c').next().value).toEqual({ kind: EffectKind.Rmw, line, label: 'c' });
  });

  it('a store by another CPU makes the next load a cache-to-cache transfer, which the trace charges', () => {
    const line = new MemoryLine('shared');
    const c = defaultCostModel;
    const r = runTraced([
      function* () {
        yield* write(line);
      },
      function* () {
        yield* delay(10_000);
        yield* read(line);
        yield* read(line);
      },
    ]);
    const reads = r.trace!.filter((e) => e.task === 't1' && e.kind === 'read').map((e) => e.dur);
    expect(reads).toEqual([c.lineTransfer, c.l1Hit]);
  });
});

describe('spin, fence, delay and time', () => {
  it('cpuRelax is a spin step costing a PAUSE, fence a fence step costing an MFENCE', () => {
    const c = defaultCostModel;
    const r = runTraced([
      function* () {
        yield* cpuRelax();
        yield* cpuRelax('waiting for lock');
        yield* fence();
      },
    ]);
    const t = r.trace!.filter((e) => e.task === 't0' && e.kind !== 'self');
    expect(t.map((e) => [e.kind, e.label, e.dur])).toEqual([
      ['spin', '', c.pause],
      ['spin', 'waiting for lock', c.pause],
      ['fence', '', c.fence],
    ]);
  });

  it('delay and delayEffect advance the CPU clock by exactly ns, which now() reads back', () => {
    const seen: number[] = [];
    const r = runTraced([
      function* () {
        seen.push(yield* now());
        yield* delay(400, 'zero page');
        seen.push(yield* now());
        yield delayEffect(80_000, 'disk read');
        seen.push(yield* now());
        yield* delay(7);
        yield delayEffect(3);
        seen.push(yield* now());
      },
    ]);
    expect(r.ok).toBe(true);
    expect(seen).toEqual([0, 400, 80_400, 80_410]);
    expect(r.time).toBe(80_410);
    expect(events(r)).toEqual(['delay zero page', 'delay disk read', 'delay ', 'delay ']);
    expect(delayEffect(5, 'x')).toEqual({ kind: EffectKind.Delay, ns: 5, label: 'x' });
  });

  it('now() reads each CPU’s own clock', () => {
    const seen: number[] = [];
    runTraced([
      function* () {
        yield* delay(100);
        seen[0] = yield* now();
      },
      function* () {
        yield* delay(250);
        seen[1] = yield* now();
      },
    ]);
    expect(seen).toEqual([100, 250]);
  });

  it('the trace names every effect kind by effectKindNames', () => {
    expect(effectKindNames[EffectKind.Read]).toBe('read');
    expect(effectKindNames[EffectKind.SpinWait]).toBe('spin-wait');
    expect(effectKindNames[EffectKind.RmwLoop]).toBe('rmw-loop');
    expect(effectKindNames).toHaveLength(Object.keys(EffectKind).length);
  });
});

describe('self, interrupts and preemption', () => {
  it('self() tells the CPU, the task and the interrupt state; selfEffect yields the same', () => {
    const infos: SelfInfo[] = [];
    const m = new Machine({ cpus: 2 });
    const a = m.spawn(1, 'a', function* () {
      infos.push(yield* self());
      yield* localIrqDisable();
      infos.push((yield selfEffect) as SelfInfo);
      yield* localIrqEnable();
      infos.push(yield* self());
    });
    expect(m.run().ok).toBe(true);
    expect(infos.map((s) => [s.cpu, s.task, s.inIrq, s.irqsEnabled])).toEqual([
      [1, a, false, true],
      [1, a, false, false],
      [1, a, false, true],
    ]);
  });

  it('localIrqSave returns whether interrupts were on; localIrqRestore puts that state back', () => {
    const seen: Array<boolean | string> = [];
    const r = runTraced([
      function* () {
        const outer = yield* localIrqSave();
        seen.push(outer, (yield* self()).irqsEnabled);
        const inner = yield* localIrqSave();
        seen.push(inner);
        yield* localIrqRestore(inner);
        seen.push((yield* self()).irqsEnabled);
        yield* localIrqRestore(outer);
        seen.push((yield* self()).irqsEnabled);
      },
    ]);
    expect(r.ok).toBe(true);
    expect(seen).toEqual([true, false, false, false, true]);
    expect(events(r)).toEqual(['irq-disable ', 'irq-disable ', 'irq-restore ', 'irq-restore ']);
  });

  it('irqDisableEffect and irqRestoreEffect yielded directly switch interrupts off and back to the state given', () => {
    const seen: boolean[] = [];
    const r = runTraced([
      function* () {
        seen.push((yield irqDisableEffect) as boolean);
        seen.push((yield* self()).irqsEnabled);
        yield irqRestoreEffect(false);
        seen.push((yield* self()).irqsEnabled);
        yield irqRestoreEffect(true);
        seen.push((yield* self()).irqsEnabled);
        yield irqDisableEffect;
        yield irqRestoreEffect(false);
        seen.push((yield* self()).irqsEnabled);
      },
    ]);
    expect(r.ok).toBe(true);
    expect(seen).toEqual([true, false, false, true, false]);
    // Both are shared objects (effects are immutable), like the unlabelled memory effects.
    expect(irqRestoreEffect(true)).toBe(irqRestoreEffect(true));
    expect(irqRestoreEffect(false)).toBe(irqRestoreEffect(false));
  });

  it('with interrupts off an IPI waits; localIrqEnable lets it in before the next step', () => {
    const order: string[] = [];
    const r = runTraced([
      function* () {
        yield* localIrqDisable();
        yield* delay(5_000);
        order.push('enable');
        yield* localIrqEnable();
        yield* fence();
        order.push('after the next step');
      },
      function* () {
        yield* delay(10);
        yield* sendIpi([0], function* () {
          order.push('handler');
        });
      },
    ]);
    expect(r.ok).toBe(true);
    expect(order).toEqual(['enable', 'handler', 'after the next step']);
  });

  it('preemptDisable raises the preempt count so that yieldCpu() is scheduling while atomic; preemptEnable lowers it', () => {
    const counts: number[] = [];
    const ok = runTraced([
      function* () {
        yield* preemptDisable();
        yield* preemptDisable();
        counts.push((yield* self()).task.preemptCount);
        yield* preemptEnable();
        counts.push((yield* self()).task.preemptCount);
        yield* preemptEnable();
        counts.push((yield* self()).task.preemptCount);
        yield* yieldCpu();
      },
    ]);
    expect(ok.ok).toBe(true);
    expect(counts).toEqual([2, 1, 0]);
    const bad = runTraced([
      function* () {
        yield* preemptDisable();
        yield* yieldCpu();
      },
    ]);
    expect(bad.failure?.kind).toBe('might-sleep');
    expect(bad.failure?.message).toMatch(/preempt count 1/);
  });

  it('yieldCpu() lets the next task on the CPU run before the caller goes on', () => {
    const order: string[] = [];
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'a', function* () {
      order.push('a1');
      yield* yieldCpu();
      order.push('a2');
    });
    m.spawn(0, 'b', function* () {
      order.push('b1');
      yield* delay(1);
      order.push('b2');
    });
    expect(m.run().ok).toBe(true);
    expect(order).toEqual(['a1', 'b1', 'b2', 'a2']);
  });
});

describe('IPIs and device interrupts', () => {
  it('sendIpi waits by default until every target ran the handler, which runs in interrupt context there', () => {
    const ran: SelfInfo[] = [];
    let seenBySender = -1;
    const r = runTraced(
      [
        function* () {
          yield* sendIpi([1, 2], function* (cpu) {
            expect(cpu).toBe((yield* self()).cpu);
            ran.push(yield* self());
          });
          seenBySender = ran.length;
        },
        function* () {
          yield* delay(100_000);
        },
        function* () {
          yield* delay(100_000);
        },
      ],
      3,
    );
    expect(r.ok).toBe(true);
    expect(seenBySender).toBe(2);
    expect(ran.map((s) => [s.cpu, s.inIrq, s.irqsEnabled]).sort()).toEqual([
      [1, true, false],
      [2, true, false],
    ]);
    expect(events(r)).toContain('ipi ipi -> 1,2');
  });

  it('sendIpi with wait false returns at once; the label names the IPI in the trace', () => {
    let seenBySender = -1;
    let ran = 0;
    const r = runTraced([
      function* () {
        yield* sendIpi(
          [1],
          function* () {
            ran++;
          },
          false,
          'tlb shootdown',
        );
        seenBySender = ran;
      },
      function* () {
        yield* delay(100_000);
      },
    ]);
    expect(r.ok).toBe(true);
    expect(seenBySender).toBe(0);
    expect(ran).toBe(1);
    expect(events(r)).toEqual(['ipi tlb shootdown -> 1']);
    expect(r.trace!.filter((e) => e.cpu === 1 && e.kind === 'ipi').map((e) => e.label)).toEqual([
      'irq: tlb shootdown from CPU 0',
    ]);
  });

  it('raiseDeviceIrq runs the handler on the raising CPU, in interrupt context, once the delay has passed', () => {
    const seen: Array<[number, boolean, number]> = [];
    let raisedAt = -1;
    let afterRaise = -1;
    const r = runTraced([
      function* () {
        yield* delay(50);
        raisedAt = yield* now();
        yield* raiseDeviceIrq(
          80_000,
          function* () {
            const s = yield* self();
            seen.push([s.cpu, s.inIrq, yield* now()]);
          },
          'disk',
        );
        afterRaise = yield* now();
        yield* delay(200_000);
      },
    ]);
    expect(r.ok).toBe(true);
    // The raiser did not wait for the device.
    expect(afterRaise).toBeLessThan(raisedAt + 80_000);
    expect(seen).toHaveLength(1);
    expect(seen[0][0]).toBe(0);
    expect(seen[0][1]).toBe(true);
    expect(seen[0][2]).toBeGreaterThanOrEqual(raisedAt + 80_000);
    expect(events(r)).toContain('ipi disk (device irq in 80000 ns)');
  });
  it('a failure report names a CPU’s coming device interrupt by its label and delay', () => {
    // Stopped by the step limit just before the raise: the report shows what each CPU would do next.
    const m = new Machine({ cpus: 1, maxSteps: 2 });
    m.spawn(0, 'submit', function* () {
      yield* delay(5_000);
      yield* raiseDeviceIrq(80_000, function* () {}, 'disk');
    });
    const r = m.run();
    expect(r.failure?.kind).toBe('step-limit');
    expect(r.failure?.cpus[0].next).toBe('ipi disk (device irq in 80000 ns)');
  });
});

describe('sleeping and waking', () => {
  it('block sleeps until woken; wake wakes one sleeper by default, in FIFO order, and Infinity wakes all', () => {
    const wq = new WaitQueue('pages');
    const order: string[] = [];
    const sleeper = (name: string, after: number): Body =>
      function* () {
        yield* delay(after);
        yield* block(wq);
        order.push(name);
      };
    const r = runTraced([
      function* () {
        yield* delay(1_000);
        yield* wake(wq);
        yield* delay(10_000);
        order.push('waker');
        yield* wake(wq, Infinity);
      },
      sleeper('first', 10),
      sleeper('second', 20),
      sleeper('third', 30),
    ]);
    expect(r.ok).toBe(true);
    expect(order).toEqual(['first', 'waker', 'second', 'third']);
    expect(events(r)).toEqual(['delay ', 'wake pages (1)', 'delay ', 'wake pages (2)']);
  });

  it('wake with a count wakes that many sleepers', () => {
    const wq = new WaitQueue('q');
    let woken = 0;
    const sleeper: Body = function* () {
      yield* block(wq);
      woken++;
    };
    let seen = -1;
    const r = runTraced([
      function* () {
        yield* delay(1_000);
        yield* wake(wq, 2);
        yield* delay(10_000);
        seen = woken;
        yield* wake(wq, Infinity);
      },
      sleeper,
      sleeper,
      sleeper,
    ]);
    expect(r.ok).toBe(true);
    expect(seen).toBe(2);
  });

  it('block with a true condition goes on without sleeping; its label names it in the trace', () => {
    const wq = new WaitQueue('never woken');
    const r = runTraced([
      function* () {
        yield* block(wq, () => true, 'lock_page');
        yield* block(wq, () => true);
      },
    ]);
    expect(r.ok).toBe(true);
    expect(events(r)).toEqual(['block lock_page', 'block never woken']);
  });

  it('block with a false condition goes back to sleep when woken, until the condition holds', () => {
    const wq = new WaitQueue('q');
    let flag = false;
    let passed = -1;
    const r = runTraced([
      function* () {
        yield* delay(1_000);
        yield* wake(wq);
        yield* delay(1_000);
        flag = true;
        yield* wake(wq);
      },
      function* () {
        yield* block(wq, () => flag);
        passed = yield* now();
      },
    ]);
    expect(r.ok).toBe(true);
    expect(passed).toBeGreaterThan(2_000);
  });

  it('wakeTask wakes that task and no other', () => {
    const wq = new WaitQueue('q');
    const order: string[] = [];
    const m = new Machine({ cpus: 3 });
    m.spawn(1, 'a', function* () {
      yield* block(wq);
      order.push('a');
    });
    const b = m.spawn(2, 'b', function* () {
      yield* block(wq);
      order.push('b');
    });
    m.spawn(0, 'waker', function* () {
      yield* delay(1_000);
      yield* wakeTask(b);
      yield* delay(10_000);
      order.push('waker');
      yield* wake(wq);
    });
    expect(m.run().ok).toBe(true);
    expect(order).toEqual(['b', 'waker', 'a']);
  });
});

describe('pure spin-waits and cmpxchg loops', () => {
  it('spinWait and spinWaitEffect are a spin then a re-read of the line, labelled as given', () => {
    const line = new MemoryLine('ticket');
    let served = false;
    const r = runTraced([
      function* () {
        yield* delay(500);
        served = true;
        yield* write(line);
      },
      function* () {
        yield* read(line);
        while (!served) yield* spinWait(line, 'ticket wait');
      },
      function* () {
        yield* read(line);
        while (!served) yield spinWaitEffect(line, 'pause', 'look');
      },
    ]);
    expect(r.ok).toBe(true);
    const t1 = events(r, 't1');
    expect(t1[0]).toBe('read ticket');
    expect(t1.slice(1, 3)).toEqual(['spin ticket wait', 'read ticket']);
    expect(t1.length % 2).toBe(1);
    const t2 = events(r, 't2');
    expect(t2.slice(1, 3)).toEqual(['spin pause', 'read look']);
    // Every iteration is the same spin and read until the store is seen.
    expect(new Set(t2.slice(1))).toEqual(new Set(['spin pause', 'read look']));
  });

  it('spinWaitEffect re-reads with the line’s shared read effect unless a read label is given', () => {
    const line = new MemoryLine('l');
    expect(spinWaitEffect(line).read).toBe(line.readEffect);
    expect(spinWaitEffect(line, 's', 'r').read).toEqual({ kind: EffectKind.Read, line, label: 'r' });
    expect(spinWaitEffect(line, 's').spin).toEqual({ kind: EffectKind.Spin, label: 's' });
  });

  it('a spin-wait that states its exit condition is not resumed until the condition holds', () => {
    const line = new MemoryLine('counter');
    let value = 0;
    let resumed = 0;
    const r = runTraced([
      function* () {
        for (let i = 1; i <= 5; i++) {
          yield* delay(300);
          value = i;
          yield* write(line);
        }
      },
      function* () {
        const ready = () => value === 5;
        yield* read(line);
        const wait = spinWaitEffect(line, 'w', undefined, ready);
        while (!ready()) {
          yield wait;
          resumed++;
        }
      },
    ]);
    expect(r.ok).toBe(true);
    // Four earlier stores changed the line without making the condition true: the code never ran for them.
    expect(resumed).toBe(1);
  });

  it('a spin-wait without an exit condition is resumed after every change of the line', () => {
    const line = new MemoryLine('counter');
    let value = 0;
    let resumed = 0;
    const r = runTraced([
      function* () {
        for (let i = 1; i <= 5; i++) {
          yield* delay(300);
          value = i;
          yield* write(line);
        }
      },
      function* () {
        yield* read(line);
        while (value !== 5) {
          yield spinWaitEffect(line, 'w');
          resumed++;
        }
      },
    ]);
    expect(r.ok).toBe(true);
    expect(resumed).toBeGreaterThanOrEqual(5);
  });

  it('rmwLoopEffect makes one locked RMW per attempt until step returns false, labelled as given', () => {
    const line = new MemoryLine('count');
    let attempts = 0;
    const r = runTraced([
      function* () {
        yield rmwLoopEffect(line, undefined, () => ++attempts < 3);
        yield rmwLoopEffect(line, 'try_cmpxchg', () => ++attempts < 5);
      },
    ]);
    expect(r.ok).toBe(true);
    expect(attempts).toBe(5);
    expect(events(r)).toEqual(['rmw count', 'rmw count', 'rmw count', 'rmw try_cmpxchg', 'rmw try_cmpxchg']);
    expect(line.rmws).toBe(5);
    expect(rmwLoopEffect(line, undefined, () => false).rmw).toBe(line.rmwEffect);
  });
});
