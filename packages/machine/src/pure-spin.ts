import type { Cpu } from './cpu.js';
import { type Effect, EffectKind, type SpinWaitEffect } from './effects.js';
import { describeEffect } from './failure-report.js';
import type { Task } from './task.js';

/**
 * The bookkeeping of pure spin-waits ({@link spinWaitEffect}) on a task: which iteration step comes next, when
 * the loop's code must run again, whether the code has shown itself pure, and whether a spinner can still be
 * released. The machine performs every step itself; these functions only decide whether the task's code
 * needs to run between two steps.
 */

/** The task's code yielded `next` (not after a spin-wait iteration, or after one it had to see): record it. */
export function enterYielded(t: Task, next: Effect): void {
  if (next.kind === EffectKind.SpinWait) {
    // A loop that states its exit condition needs no check that its code only spins: the code does not run.
    if (next.until !== undefined) t.spinChecked = true;
    else if (t.spinWait === null) t.spinChecked = false;
    t.spinWait = next;
    t.spinVersion = next.line.version;
    t.pending = next.spin;
  } else {
    t.spinWait = null;
    t.pending = next;
  }
}

/**
 * After step `e` of the task's spin-wait `w` was performed: moves the task to the iteration's next step and
 * returns `'read'` after the spin, or `'skipped'` after the read when the code cannot decide anything new
 * (the line is unchanged since the code last ran and the code has shown it only spins again, or the loop's
 * stated exit condition still fails). Returns null when the code must run.
 */
export function advanceSpin(t: Task, w: SpinWaitEffect, e: Effect): 'read' | 'skipped' | null {
  if (e === w.spin) {
    t.pending = w.read;
    return 'read';
  }
  if (t.spinChecked && w.line.version === t.spinVersion) {
    t.pending = w.spin;
    return 'skipped';
  }
  if (w.until !== undefined && !w.until()) {
    // The line changed, but the loop's stated exit condition still fails: the code would spin again.
    t.spinVersion = w.line.version;
    t.spinChecked = true;
    t.pending = w.spin;
    return 'skipped';
  }
  return null;
}

/**
 * The task's code ran after an iteration of its spin-wait `w` and asked for `next`. With the line unchanged
 * since the code last ran, a pure loop can only spin again on the same line; then the code counts as checked
 * and need not run again until the line is written. Returns the message of an `impure-spin` failure if the
 * code did anything else, or null.
 */
export function checkResumed(c: Cpu, t: Task, w: SpinWaitEffect, next: Effect): string | null {
  if (w.until !== undefined) return null; // resumed because the exit condition held: the code may do anything
  const unchanged = w.line.version === t.spinVersion;
  if (next.kind === EffectKind.SpinWait && next.line === w.line) {
    t.spinChecked = unchanged;
    return null;
  }
  if (!unchanged) return null;
  return `task ${t.name} on CPU ${c.id} declared a pure spin-wait on '${w.line.label}', but with the line unchanged its code went on to ${describeEffect(next.kind === EffectKind.SpinWait ? next.read : next)} instead of spinning again; a pure spin loop may only look at the line and spin again (use cpuRelax() for a loop that does more)`;
}

/**
 * If CPU `c` (which can step) can do nothing but spin on a line nobody has written since its task's code
 * last ran, with no IPI on its way and no other task the tick could switch to, describes it for a
 * `spin-forever` report; otherwise null.
 */
export function describeStuckSpinner(c: Cpu): string | null {
  const t = c.current;
  if (
    c.irq !== null ||
    c.inbox.length > 0 ||
    t === null ||
    t.spinWait === null ||
    !t.spinChecked ||
    t.spinWait.line.version !== t.spinVersion ||
    (c.runqueue.length > 0 && c.irqEnabled && t.preemptCount === 0)
  ) {
    return null;
  }
  return `${t.name} on CPU ${c.id} spins on '${t.spinWait.line.label}'`;
}
