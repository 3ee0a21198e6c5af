import { describe, expect, it } from 'vitest';
import { Cpu } from './cpu.js';
import { type Effect, EffectKind, rmwLoopEffect, spinWaitEffect } from './effects.js';
import { cpuReport, describeDeadlock, describeEffect, describeSpinners } from './failure-report.js';
import { MemoryLine } from './memory-line.js';
import { Task } from './task.js';
import { CallEffect } from './trampoline.js';
import { WaitQueue } from './wait-queue.js';

const line = new MemoryLine('mm->mmap_lock');
const wq = new WaitQueue('mmap_lock');
function* nothing(): Generator<Effect, void, unknown> {}
const task = (id: number, name: string, cpu: number) => new Task(id, name, cpu, nothing());

describe('describeEffect', () => {
  it('names each kind of effect with what it acts on', () => {
    const t = task(0, 'kswapd', 0);
    const cases: Array<[Effect | undefined, string]> = [
      [undefined, 'start'],
      [{ kind: EffectKind.Read, line }, 'read mm->mmap_lock'],
      [{ kind: EffectKind.Write, line, label: 'count' }, 'write count'],
      [{ kind: EffectKind.Rmw, line }, 'rmw mm->mmap_lock'],
      [{ kind: EffectKind.Block, wq }, 'block on mmap_lock'],
      [{ kind: EffectKind.Wake, wq, count: 1 }, 'wake mmap_lock'],
      [{ kind: EffectKind.WakeTask, task: t }, 'wake task kswapd'],
      [
        { kind: EffectKind.Ipi, targets: [1, 2], handler: nothing, wait: true, label: 'tlb' },
        'ipi tlb -> 1,2',
      ],
      [{ kind: EffectKind.Ipi, targets: [3], handler: nothing, wait: true }, 'ipi  -> 3'],
      [
        {
          kind: EffectKind.Ipi,
          targets: [],
          handler: nothing,
          wait: false,
          label: 'disk',
          deviceAfterNs: 80000,
        },
        'ipi disk (device irq in 80000 ns)',
      ],
      [
        { kind: EffectKind.Ipi, targets: [], handler: nothing, wait: false, deviceAfterNs: 0 },
        'ipi  (device irq in 0 ns)',
      ],
      [{ kind: EffectKind.Delay, ns: 400, label: 'zero page' }, 'delay 400ns zero page'],
      [{ kind: EffectKind.Delay, ns: 5 }, 'delay 5ns'],
      [{ kind: EffectKind.IrqRestore, enabled: true }, 'irq-restore on'],
      [{ kind: EffectKind.IrqRestore, enabled: false }, 'irq-restore off'],
      [spinWaitEffect(line, 'owner'), 'spin-wait owner'],
      [spinWaitEffect(line), 'spin-wait mm->mmap_lock'],
      // A cmpxchg retry loop is described by its locked RMW, the step it performs next.
      [rmwLoopEffect(line, 'try_cmpxchg', () => false), 'rmw try_cmpxchg'],
      [rmwLoopEffect(line, undefined, () => false), 'rmw mm->mmap_lock'],
      [{ kind: EffectKind.Spin, label: 'ticket' }, 'spin ticket'],
      [{ kind: EffectKind.Fence }, 'fence'],
      // A call is never pending (the machine enters the callee at once); a report names it all the same.
      [new CallEffect(nothing()), 'call'],
    ];
    for (const [e, text] of cases) expect(describeEffect(e)).toBe(text);
  });
});

describe('cpuReport', () => {
  it('reports an idle CPU, a running task, a sleeper, a handler and an IPI wait', () => {
    const c = new Cpu(3, 1000);
    c.clock = 77;
    expect(cpuReport(c)).toEqual({
      cpu: 3,
      clock: 77,
      irqsEnabled: true,
      task: null,
      next: '-',
      inIrq: false,
      queuedTasks: [],
      pendingIpis: 0,
    });
    const t = task(0, 'worker', 3);
    t.pending = { kind: EffectKind.Rmw, line };
    c.current = t;
    c.runqueue.push(task(1, 'second', 3));
    c.irqEnabled = false;
    expect(cpuReport(c)).toMatchObject({
      task: 'worker',
      next: 'rmw mm->mmap_lock',
      irqsEnabled: false,
      queuedTasks: ['second'],
    });
    t.state = 'blocked';
    t.waitingOn = wq;
    expect(cpuReport(c).next).toBe('sleeping on mmap_lock');
    t.state = 'runnable';
    c.irq = {
      top: nothing(),
      callers: [],
      pending: { kind: EffectKind.Fence },
      resume: undefined,
      msg: { handler: nothing, arrival: 0, req: { remaining: 1, ackTime: 0, label: 'x' }, from: 0 },
      savedIrq: true,
      spinWait: null,
      rmwLoop: null,
    };
    expect(cpuReport(c)).toMatchObject({ inIrq: true, next: 'fence' });
    c.current = null;
    expect(cpuReport(c).next).toBe('fence'); // a handler on a CPU with no task
    c.irq = null;
    c.waitingIpi = { remaining: 2, ackTime: 0, label: 'flush_tlb' };
    c.inbox.push(c.inbox[0] ?? { handler: nothing, arrival: 5, req: c.waitingIpi, from: 1 });
    expect(cpuReport(c)).toMatchObject({ next: "waiting for 2 IPI ack(s) of 'flush_tlb'", pendingIpis: 1 });
  });
});

describe('describeDeadlock and describeSpinners', () => {
  it('says who sleeps on what, held by whom, and which CPUs hold up an IPI', () => {
    const a = task(0, 'A', 0);
    const b = task(1, 'B', 1);
    const c = task(2, 'C', 1);
    const held = new WaitQueue('lock B');
    held.describe = () => 'A';
    a.state = 'blocked';
    a.waitingOn = held;
    b.state = 'blocked';
    b.waitingOn = wq;
    c.state = 'done';
    const cpus = [new Cpu(0, 1), new Cpu(1, 1), new Cpu(2, 1)];
    const req = { remaining: 1, ackTime: 0, label: 'flush' };
    cpus[0].waitingIpi = req;
    cpus[2].inbox.push({ handler: nothing, arrival: 0, req, from: 0 });
    cpus[1].inbox.push({ handler: nothing, arrival: 0, req: { ...req }, from: 2 });
    const cpus3 = [...cpus, new Cpu(3, 1)];
    cpus3[3].inbox.push({ handler: nothing, arrival: 0, req, from: 0 });
    expect(describeDeadlock([a, b, c], cpus)).toBe(
      "every task is blocked: A on CPU 0 sleeps on 'lock B' (held by A); B on CPU 1 sleeps on 'mmap_lock'; CPU 0 waits for IPI acks of 'flush' from CPU 2 (interrupts off there)",
    );
    expect(describeDeadlock([], cpus3)).toBe(
      "every task is blocked: CPU 0 waits for IPI acks of 'flush' from CPU 2, 3 (interrupts off there)",
    );
  });

  it('lists what each CPU with something to do would do next', () => {
    const cpus = [new Cpu(0, 1), new Cpu(1, 1), new Cpu(2, 1)];
    const t0 = task(0, 'x', 0);
    t0.pending = { kind: EffectKind.Spin, label: 'flag' };
    cpus[0].current = t0;
    const t2 = task(1, 'y', 2);
    t2.pending = { kind: EffectKind.Read, line };
    cpus[2].current = t2;
    expect(describeSpinners(cpus)).toBe('CPU 0 next: spin flag; CPU 2 next: read mm->mmap_lock');
    expect(describeSpinners([new Cpu(0, 1)])).toBe('');
  });
});
