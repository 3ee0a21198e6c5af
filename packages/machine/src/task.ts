import type { BlockEffect, Effect, Kernel, RmwLoopEffect, SpinWaitEffect } from './effects.js';
import type { CallStack } from './trampoline.js';
import type { WaitQueue } from './wait-queue.js';

/** Life cycle of a task on the machine. */
export type TaskState = 'runnable' | 'blocked' | 'done';

/**
 * A task (`struct task_struct`): a generator of kernel code bound to one CPU. It runs until it returns,
 * sleeps on a wait queue, or (with several tasks on a CPU) is preempted by the tick.
 */
export class Task implements CallStack {
  state: TaskState = 'runnable';
  /** The effect yielded and not yet performed; `undefined` before the first step. */
  pending: Effect | undefined = undefined;
  /** Whether the generator has been started. */
  started = false;
  /** Value passed into the generator at its next resumption. */
  resume: unknown = undefined;
  /** Wait queue the task sleeps on, while blocked. */
  waitingOn: WaitQueue | undefined = undefined;
  /** The block effect being waited out, so its condition can be re-checked on wake-up. */
  blockEffect: BlockEffect | undefined = undefined;
  /** Return value once done. */
  result: unknown = undefined;
  /** Simulated time at which it was last woken (used by the timed policy). */
  wokenAt = 0;
  /** Set by a wake-up, consumed by the next block (so a wake-up before the sleep is not lost). */
  woken = false;
  /** Set while a `yieldCpu()` has moved the task to the back of its runqueue. */
  yielded = false;
  /** `preempt_count()`: while above zero the tick does not preempt, and sleeping is a bug. */
  preemptCount = 0;
  /** The pure spin-wait whose iteration is in progress (`pending` is its spin or its read), or null. */
  spinWait: SpinWaitEffect | null = null;
  /** The spun-on line's `version` when the task's code last ran. */
  spinVersion = 0;
  /** Whether the code, run again with the line unchanged, went straight back to the same spin-wait. */
  spinChecked = false;
  /** The compare-and-exchange retry loop in progress (`pending` is its `rmw`), or null. */
  rmwLoop: RmwLoopEffect | null = null;
  /** The generator the task runs now: `gen`, or the innermost callee of a `yield* call(...)`. */
  top: Kernel<unknown>;
  /** The callers of `top` waiting for it to return (see {@link CallStack}); empty while `gen` runs. */
  readonly callers: Kernel<unknown>[] = [];
  constructor(
    /** Machine-wide task id, in spawn order. */
    readonly id: number,
    readonly name: string,
    /** The CPU it is bound to. */
    readonly cpu: number,
    readonly gen: Kernel<unknown>,
  ) {
    this.top = gen;
  }
}
