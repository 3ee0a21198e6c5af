import { irqDisableEffect, irqRestoreEffect, type Kernel, type SelfInfo, selfEffect } from '@spf/machine';

/** Who is running: the CPU and task `self()` reported (the task is absent in an IPI on an idle CPU). */
export type Current = { readonly cpu: number; readonly task: SelfInfo['task'] | null };

/** `current` and `smp_processor_id()` in one step. */
export function* current(): Kernel<Current> {
  return currentOf((yield selfEffect) as SelfInfo);
}

/** The {@link Current} of what `self()` reported (for hot paths that yield `selfEffect` themselves). */
export function currentOf(s: SelfInfo): Current {
  return { cpu: s.cpu, task: s.task ?? null };
}

/** A short name of the running task for reports: `task 'w1' on CPU 2`. */
export function describeCurrent(c: Current): string {
  return c.task ? `task '${c.task.name}' on CPU ${c.cpu}` : `an interrupt on idle CPU ${c.cpu}`;
}

/**
 * Reads whether interrupts are enabled on this CPU (`!irqs_disabled()`), as a save/restore pair: the
 * machine has no effect that only reads the flag. Used by lockdep's irq-state tracking.
 */
export function* irqsEnabled(): Kernel<boolean> {
  const was = (yield irqDisableEffect) as boolean;
  yield irqRestoreEffect(was);
  return was;
}
