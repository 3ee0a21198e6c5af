import type { MemoryLine } from './memory-line.js';
import type { Task } from './task.js';
import type { CallEffect } from './trampoline.js';
import type { WaitQueue } from './wait-queue.js';

/**
 * Numeric kinds of the effects kernel code yields. Every operation that another CPU could observe, or
 * that costs time, is one effect; the code between two effects runs atomically.
 */
export const EffectKind = {
  Read: 0,
  Write: 1,
  Rmw: 2,
  Spin: 3,
  Fence: 4,
  IrqDisable: 5,
  IrqEnable: 6,
  IrqRestore: 7,
  Ipi: 8,
  Block: 9,
  Wake: 10,
  WakeTask: 11,
  Delay: 12,
  Now: 13,
  Self: 14,
  Yield: 15,
  SpinWait: 16,
  RmwLoop: 17,
  Call: 18,
} as const;
export type EffectKindValue = (typeof EffectKind)[keyof typeof EffectKind];

/** Printable names of the effect kinds, indexed by {@link EffectKind} value. */
export const effectKindNames: readonly string[] = [
  'read',
  'write',
  'rmw',
  'spin',
  'fence',
  'irq-disable',
  'irq-enable',
  'irq-restore',
  'ipi',
  'block',
  'wake',
  'wake-task',
  'delay',
  'now',
  'self',
  'yield',
  'spin-wait',
  'rmw-loop',
  'call',
];

/** A handler that runs on a CPU that received an IPI, in interrupt context (interrupts off). */
export type IpiHandler = (cpu: number) => Kernel<void>;

export type MemoryEffect = {
  readonly kind: typeof EffectKind.Read | typeof EffectKind.Write | typeof EffectKind.Rmw;
  readonly line: MemoryLine;
  readonly label?: string;
};
export type IpiEffect = {
  readonly kind: typeof EffectKind.Ipi;
  readonly targets: readonly number[];
  readonly handler: IpiHandler;
  /** Whether the sender waits until every target has run the handler (smp_call_function's `wait`). */
  readonly wait: boolean;
  readonly label?: string;
  /**
   * A device interrupt instead of an IPI (see {@link raiseDeviceIrq}): `targets` is empty and the handler
   * runs on the raising CPU once `afterNs` of simulated time have passed.
   */
  readonly deviceAfterNs?: number;
};
export type BlockEffect = {
  readonly kind: typeof EffectKind.Block;
  readonly wq: WaitQueue;
  /** Checked atomically when the effect is performed and again on every wake-up; true means proceed. */
  readonly until?: () => boolean;
  readonly label?: string;
};
export type WakeEffect = {
  readonly kind: typeof EffectKind.Wake;
  readonly wq: WaitQueue;
  readonly count: number;
};
export type WakeTaskEffect = { readonly kind: typeof EffectKind.WakeTask; readonly task: Task };
export type DelayEffect = {
  readonly kind: typeof EffectKind.Delay;
  readonly ns: number;
  readonly label?: string;
};
export type IrqRestoreEffect = { readonly kind: typeof EffectKind.IrqRestore; readonly enabled: boolean };
export type SimpleEffect = {
  readonly kind:
    | typeof EffectKind.Spin
    | typeof EffectKind.Fence
    | typeof EffectKind.IrqDisable
    | typeof EffectKind.IrqEnable
    | typeof EffectKind.Now
    | typeof EffectKind.Self
    | typeof EffectKind.Yield;
  readonly label?: string;
};

/**
 * One iteration of a pure spin-wait loop on `line`: `cpu_relax()` then a re-read of the line, performed by
 * the machine as the two steps `spin` and `read` (the same steps, costs and trace as yielding those two
 * effects). Made by {@link spinWaitEffect}; see there for the contract that lets the machine skip the
 * loop's code while the line is unchanged.
 */
export type SpinWaitEffect = {
  readonly kind: typeof EffectKind.SpinWait;
  readonly line: MemoryLine;
  /** The iteration's first step: the PAUSE. */
  readonly spin: SimpleEffect;
  /** The iteration's second step: the re-read of `line`. */
  readonly read: MemoryEffect;
  /**
   * The loop's exit condition, if the loop states it: a side-effect-free test of values on `line`. The
   * machine then evaluates it itself after a re-read that follows a write of the line, and resumes the code
   * only once it holds.
   */
  readonly until?: () => boolean;
};

/**
 * A `try_cmpxchg()` retry loop on one line: the machine performs `rmw` and then runs `step`, the loop's
 * host code up to its next effect, again and again until `step` returns false. Made by
 * {@link rmwLoopEffect}; see there for the contract.
 */
export type RmwLoopEffect = {
  readonly kind: typeof EffectKind.RmwLoop;
  /** The locked read-modify-write of each attempt. */
  readonly rmw: MemoryEffect;
  /** What the loop's code does after each attempt; true: attempt again, false: the code goes on. */
  readonly step: () => boolean;
};

/** Everything kernel code can yield to the machine. */
export type Effect =
  | MemoryEffect
  | IpiEffect
  | BlockEffect
  | WakeEffect
  | WakeTaskEffect
  | DelayEffect
  | IrqRestoreEffect
  | SimpleEffect
  | SpinWaitEffect
  | RmwLoopEffect
  | CallEffect;

/**
 * Simulated kernel code: a generator that yields {@link Effect}s and returns `T`. Compose with `yield*`, or
 * with `yield* call(...)` (the machine's trampoline, see {@link CallEffect}) on deep call chains.
 */
export type Kernel<T = void> = Generator<Effect, T, unknown>;

/** Where a task is running when it asks with {@link self}. */
export type SelfInfo = {
  readonly cpu: number;
  /** The task running (or, in an IPI handler, the task it interrupted). */
  readonly task: Task;
  /** Whether this code runs in an IPI handler (hard-irq context). */
  readonly inIrq: boolean;
  /** Whether interrupts are enabled on this CPU. */
  readonly irqsEnabled: boolean;
};

/**
 * The effect object of a plain load from `line`, for hot paths that `yield` it directly instead of
 * `yield* read(line, label)` (one generator fewer per access; the machine sees the same effect).
 * Unlabelled loads reuse the line's cached effect.
 */
export function readEffect(line: MemoryLine, label?: string): MemoryEffect {
  return label === undefined ? line.readEffect : { kind: EffectKind.Read, line, label };
}
/** The effect object of a plain store to `line` (see {@link readEffect}). */
export function writeEffect(line: MemoryLine, label?: string): MemoryEffect {
  return label === undefined ? line.writeEffect : { kind: EffectKind.Write, line, label };
}
/** The effect object of a locked read-modify-write on `line` (see {@link readEffect}). */
export function rmwEffect(line: MemoryLine, label?: string): MemoryEffect {
  return label === undefined ? line.rmwEffect : { kind: EffectKind.Rmw, line, label };
}
/** The effect object of {@link delay}, for hot paths that `yield` it directly. */
export function delayEffect(ns: number, label?: string): DelayEffect {
  return { kind: EffectKind.Delay, ns, label };
}

/** The effect object of {@link self} (one shared object: effects are immutable), for hot paths. */
export const selfEffect: SimpleEffect = { kind: EffectKind.Self };
/** The effect object of {@link localIrqDisable} and {@link localIrqSave}, for hot paths. */
export const irqDisableEffect: SimpleEffect = { kind: EffectKind.IrqDisable };
const irqRestoreOn: IrqRestoreEffect = { kind: EffectKind.IrqRestore, enabled: true };
const irqRestoreOff: IrqRestoreEffect = { kind: EffectKind.IrqRestore, enabled: false };
/** The effect object of {@link localIrqRestore}, for hot paths. */
export function irqRestoreEffect(enabled: boolean): IrqRestoreEffect {
  return enabled ? irqRestoreOn : irqRestoreOff;
}

/** A plain load from `line`. */
export function* read(line: MemoryLine, label?: string): Kernel<void> {
  yield label === undefined ? line.readEffect : { kind: EffectKind.Read, line, label };
}
/** A plain store to `line` (needs the line exclusive: invalidates other copies). */
export function* write(line: MemoryLine, label?: string): Kernel<void> {
  yield label === undefined ? line.writeEffect : { kind: EffectKind.Write, line, label };
}
/** A locked read-modify-write on `line` (xchg, cmpxchg, lock xadd): exclusive and serialized per line. */
export function* rmw(line: MemoryLine, label?: string): Kernel<void> {
  yield label === undefined ? line.rmwEffect : { kind: EffectKind.Rmw, line, label };
}
/** One iteration of a spin-wait loop (`cpu_relax()`, the PAUSE instruction). */
export function* cpuRelax(label?: string): Kernel<void> {
  yield { kind: EffectKind.Spin, label };
}
/**
 * The effect of one iteration of a **pure** spin-wait loop on `line`: `cpu_relax()` (a spin step labelled
 * `label`) then a re-read of `line` (a read step labelled `readLabel`, default the line's label). Yield it
 * where a loop would yield `cpuRelax(label)` and then re-read the line:
 *
 * ```ts
 * yield readEffect(line);                              // the first look
 * while (!ready()) yield spinWaitEffect(line, 'name'); // cpu_relax(); look again
 * ```
 *
 * The steps, their costs and the trace are exactly those of the plain loop, under every policy. The
 * declaration of purity is what the machine gains: between two iterations the loop's code only looks at
 * values on `line` and decides to spin again, so while no CPU has written `line` since the code last ran,
 * its outcome cannot change and the machine performs the iterations without running the code (it runs it
 * again once after each write of the line, and once more to check the loop is pure). A loop whose code
 * does anything else between two iterations of an unchanged line (stores, reads another line, exits on an
 * iteration count) is not pure: the machine stops the run with an `impure-spin` failure. A CPU spinning
 * on a line no CPU is left to write fails with `spin-forever` instead of running to the step limit.
 *
 * With `until`, the loop states its exit condition (a side-effect-free test of values on `line`, the same
 * test the loop makes): the machine evaluates it after each re-read that follows a write of the line and
 * resumes the code only when it holds, so a waiter whose turn has not come costs no resumption at all:
 *
 * ```ts
 * yield readEffect(line);
 * if (!ready()) {
 *   const wait = spinWaitEffect(line, 'name', undefined, ready);
 *   while (!ready()) yield wait;
 * }
 * ```
 *
 * One object may be made once and yielded many times (effects are immutable).
 */
export function spinWaitEffect(
  line: MemoryLine,
  label?: string,
  readLabel?: string,
  until?: () => boolean,
): SpinWaitEffect {
  return {
    kind: EffectKind.SpinWait,
    line,
    spin: { kind: EffectKind.Spin, label },
    read: readLabel === undefined ? line.readEffect : { kind: EffectKind.Read, line, label: readLabel },
    until,
  };
}
/** One iteration of a pure spin-wait loop on `line` (see {@link spinWaitEffect}). */
export function* spinWait(line: MemoryLine, label?: string): Kernel<void> {
  yield spinWaitEffect(line, label);
}
/**
 * The effect of a compare-and-exchange retry loop on `line` (Linux's `do { ... } while
 * (!atomic_long_try_cmpxchg(...))`): each attempt is one locked read-modify-write step of `line` (labelled
 * `label`), after which the machine calls `step`, the host code the loop runs between that attempt and its
 * next effect (compare, store on success, recompute the new value on failure). `step` returns true to make
 * another attempt and false when the loop is over; the code that yielded the effect then goes on and reads
 * the loop's outcome from whatever `step` recorded. Instead of
 *
 * ```ts
 * for (;;) {
 *   yield rmwEffect(line);                         // the cmpxchg
 *   const old = cell.value;
 *   if (old === expected) { cell.value = next; break; }
 *   expected = old;
 *   if (gaveUp(expected)) break;
 *   next = f(expected);
 * }
 * ```
 *
 * write `yield rmwLoopEffect(line, undefined, () => { ...the same body, returning true instead of looping... })`.
 *
 * The steps, their costs, the schedule under every policy and the trace are exactly those of the plain loop;
 * what the machine saves is resuming the loop's code (and every generator frame between it and the
 * machine) after a failed attempt. `step` must do what the loop's code would do between two attempts and
 * nothing the machine should see: it cannot yield, so it cannot perform other effects. An exception thrown
 * by `step` fails the run as one thrown by the code would.
 */
export function rmwLoopEffect(
  line: MemoryLine,
  label: string | undefined,
  step: () => boolean,
): RmwLoopEffect {
  return {
    kind: EffectKind.RmwLoop,
    rmw: label === undefined ? line.rmwEffect : { kind: EffectKind.Rmw, line, label },
    step,
  };
}
/** A full memory barrier (`smp_mb()`, MFENCE). */
export function* fence(): Kernel<void> {
  yield { kind: EffectKind.Fence };
}
/** `local_irq_disable()`. */
export function* localIrqDisable(): Kernel<void> {
  yield { kind: EffectKind.IrqDisable };
}
/** `local_irq_enable()`: pending IPIs are delivered at the next step. */
export function* localIrqEnable(): Kernel<void> {
  yield { kind: EffectKind.IrqEnable };
}
/** `local_irq_save()`: disables interrupts and returns whether they were enabled. */
export function* localIrqSave(): Kernel<boolean> {
  return (yield { kind: EffectKind.IrqDisable }) as boolean;
}
/** `local_irq_restore(flags)`. */
export function* localIrqRestore(enabled: boolean): Kernel<void> {
  yield { kind: EffectKind.IrqRestore, enabled };
}
/**
 * Sends an IPI to `targets` (`smp_call_function_many`). Each target runs `handler` the next time it has
 * interrupts enabled; with `wait`, the sender spins until every target has acknowledged. The sender must
 * not be among the targets.
 */
export function* sendIpi(
  targets: readonly number[],
  handler: IpiHandler,
  wait = true,
  label?: string,
): Kernel<void> {
  yield { kind: EffectKind.Ipi, targets, handler, wait, label };
}
/**
 * Programs a device whose completion interrupt arrives on this CPU `afterNs` nanoseconds from now (a disk
 * finishing a request submitted here: blk-mq completes on the submitting CPU). The handler runs in
 * interrupt context, on top of whatever the CPU runs then, once interrupts are enabled; if the CPU has
 * nothing else to do it idles until the interrupt arrives. The raiser does not wait. Under `runSync` the
 * handler runs at once (a single CPU with nothing else to do).
 */
export function* raiseDeviceIrq(afterNs: number, handler: IpiHandler, label?: string): Kernel<void> {
  yield { kind: EffectKind.Ipi, targets: [], handler, wait: false, label, deviceAfterNs: afterNs };
}
/**
 * Sleeps on `wq` until woken; with `until`, the check and the sleep are one atomic step (the
 * prepare_to_wait / condition / schedule pattern), so a wake-up between them is never lost, and the task
 * goes back to sleep if it is woken while `until()` is still false.
 */
export function* block(wq: WaitQueue, until?: () => boolean, label?: string): Kernel<void> {
  yield { kind: EffectKind.Block, wq, until, label };
}
/** Wakes up to `count` tasks sleeping on `wq` in FIFO order (`Infinity` wakes all). */
export function* wake(wq: WaitQueue, count = 1): Kernel<void> {
  yield { kind: EffectKind.Wake, wq, count };
}
/** `wake_up_process(task)`: wakes one specific task if it is sleeping. */
export function* wakeTask(task: Task): Kernel<void> {
  yield { kind: EffectKind.WakeTask, task };
}
/** Spends `ns` of simulated time on this CPU without touching shared memory (I/O wait, zeroing a page). */
export function* delay(ns: number, label?: string): Kernel<void> {
  yield { kind: EffectKind.Delay, ns, label };
}
/** The current CPU's simulated clock in nanoseconds. */
export function* now(): Kernel<number> {
  return (yield { kind: EffectKind.Now }) as number;
}
/** The CPU and task this code is running on. */
export function* self(): Kernel<SelfInfo> {
  return (yield { kind: EffectKind.Self }) as SelfInfo;
}
/**
 * `cond_resched()`/`schedule()`: lets another task on this CPU run if one is waiting. Like a sleep, it is
 * only allowed in process context with interrupts on and preemption enabled: called with interrupts
 * disabled, with a preempt count (a spinlock held, `preemptDisable()`, an RCU read-side section) or from an
 * interrupt handler, it stops the run with a `might-sleep` failure ("scheduling while atomic"), as Linux's
 * `__might_resched()` / `__schedule_bug()` report it. Under `runSync` it does nothing.
 */
export function* yieldCpu(): Kernel<void> {
  yield { kind: EffectKind.Yield };
}

/** `preempt_disable()`: the tick will not switch this task out, and it must not sleep. */
export function* preemptDisable(): Kernel<void> {
  const s = (yield { kind: EffectKind.Self }) as SelfInfo;
  s.task.preemptCount++;
}
/** `preempt_enable()`. */
export function* preemptEnable(): Kernel<void> {
  const s = (yield { kind: EffectKind.Self }) as SelfInfo;
  s.task.preemptCount--;
}
