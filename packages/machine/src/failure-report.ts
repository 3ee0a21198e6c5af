import type { Cpu } from './cpu.js';
import { type Effect, EffectKind, effectKindNames } from './effects.js';
import type { CpuReport } from './failure.js';
import type { Task } from './task.js';

/** A short human description of an effect, for reports. */
export function describeEffect(e: Effect | undefined): string {
  if (e === undefined) return 'start';
  const name = effectKindNames[e.kind];
  switch (e.kind) {
    case EffectKind.Read:
    case EffectKind.Write:
    case EffectKind.Rmw:
      return `${name} ${e.label ?? e.line.label}`;
    case EffectKind.Block:
      return `block on ${e.wq.label}`;
    case EffectKind.Wake:
      return `wake ${e.wq.label}`;
    case EffectKind.WakeTask:
      return `wake task ${e.task.name}`;
    case EffectKind.Ipi:
      // A device interrupt has no targets: it comes back to this CPU after its delay (as the trace says it).
      return e.deviceAfterNs === undefined
        ? `ipi ${e.label ?? ''} -> ${e.targets.join(',')}`
        : `ipi ${e.label ?? ''} (device irq in ${e.deviceAfterNs} ns)`;
    case EffectKind.Delay:
      return `delay ${e.ns}ns ${e.label ?? ''}`.trim();
    case EffectKind.IrqRestore:
      return `irq-restore ${e.enabled ? 'on' : 'off'}`;
    case EffectKind.SpinWait:
      return `${name} ${e.spin.label ?? e.line.label}`;
    case EffectKind.RmwLoop:
      return describeEffect(e.rmw);
    case EffectKind.Call:
      return name; // never pending: the machine enters the callee at once
    default:
      return e.label ? `${name} ${e.label}` : name;
  }
}

/** One CPU's state in a failure report: clock, interrupts, task and what it would do next. */
export function cpuReport(c: Cpu): CpuReport {
  let next = c.current === null && c.irq === null ? '-' : describeEffect(c.pendingEffect);
  if (c.current?.state === 'blocked') next = `sleeping on ${c.current.waitingOn?.label}`;
  if (c.waitingIpi) next = `waiting for ${c.waitingIpi.remaining} IPI ack(s) of '${c.waitingIpi.label}'`;
  return {
    cpu: c.id,
    clock: c.clock,
    irqsEnabled: c.irqEnabled,
    task: c.current?.name ?? null,
    next,
    inIrq: c.irq !== null,
    queuedTasks: c.runqueue.map((t) => t.name),
    pendingIpis: c.inbox.length,
  };
}

/** The message of a `deadlock` failure: who sleeps on what (held by whom), and who waits for which IPI. */
export function describeDeadlock(tasks: readonly Task[], cpus: readonly Cpu[]): string {
  const parts: string[] = [];
  for (const t of tasks) {
    if (t.state === 'blocked') {
      const wq = t.waitingOn!;
      const holders = wq.describe ? ` (held by ${wq.describe()})` : '';
      parts.push(`${t.name} on CPU ${t.cpu} sleeps on '${wq.label}'${holders}`);
    }
  }
  for (const c of cpus) {
    if (c.waitingIpi) {
      const blockers = cpus.filter((o) => o.inbox.some((m) => m.req === c.waitingIpi)).map((o) => o.id);
      parts.push(
        `CPU ${c.id} waits for IPI acks of '${c.waitingIpi.label}' from CPU ${blockers.join(', ')} (interrupts off there)`,
      );
    }
  }
  return `every task is blocked: ${parts.join('; ')}`;
}

/** What every CPU would do next, for a `step-limit` failure (usually CPUs spinning on each other). */
export function describeSpinners(cpus: readonly Cpu[]): string {
  const parts: string[] = [];
  for (const c of cpus) {
    const e = c.pendingEffect;
    if (e) parts.push(`CPU ${c.id} next: ${describeEffect(e)}`);
  }
  return parts.join('; ');
}
