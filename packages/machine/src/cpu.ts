import type { Effect, IpiHandler, RmwLoopEffect, SelfInfo, SpinWaitEffect } from './effects.js';
import type { Task } from './task.js';
import type { CallStack } from './trampoline.js';

/** An IPI sent to several CPUs: how many have still to run the handler, and when the last one finished. */
export type IpiRequest = { remaining: number; ackTime: number; readonly label: string };

/** One IPI waiting in a CPU's inbox. */
export type IpiMessage = {
  readonly handler: IpiHandler;
  readonly arrival: number;
  readonly req: IpiRequest;
  readonly from: number;
};

/** An IPI handler running on top of the interrupted task. */
export type IrqFrame = CallStack & {
  pending: Effect | undefined;
  resume: unknown;
  readonly msg: IpiMessage;
  readonly savedIrq: boolean;
  /** A spin-wait iteration in progress in the handler (performed step by step, never skipped). */
  spinWait: SpinWaitEffect | null;
  /** A compare-and-exchange retry loop in progress in the handler (its `rmw` is `pending`), or null. */
  rmwLoop: RmwLoopEffect | null;
};

/** One simulated CPU: its clock, interrupt state, current task, runqueue, IPI inbox and running handler. */
export class Cpu {
  clock = 0;
  irqEnabled = true;
  /**
   * The last answer to a `self()` on this CPU: handed out again while it is still true (same task, context and
   * interrupt state), so that the frequent `self()` of lock code allocates nothing. Answers are immutable.
   */
  selfInfo: SelfInfo | null = null;
  current: Task | null = null;
  readonly runqueue: Task[] = [];
  readonly inbox: IpiMessage[] = [];
  irq: IrqFrame | null = null;
  /** IPI the current task waits on (its pending effect is that IPI, already sent). */
  waitingIpi: IpiRequest | null = null;
  nextTick: number;
  constructor(
    readonly id: number,
    tick: number,
  ) {
    this.nextTick = tick;
  }

  /** The effect this CPU performs next: the IPI handler's if one runs, else the current task's. */
  get pendingEffect(): Effect | undefined {
    return this.irq ? this.irq.pending : this.current?.pending;
  }
}
