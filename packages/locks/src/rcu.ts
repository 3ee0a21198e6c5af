import {
  Cell,
  cpuRelax,
  type Kernel,
  KernelFault,
  type Machine,
  MemoryLine,
  yieldCpu,
  readEffect,
  type SelfInfo,
  selfEffect,
  writeEffect,
  rmwEffect,
} from '@spf/machine';
import { current, currentOf, describeCurrent } from './current.js';
import type { Poisonable } from './rcu-object.js';

/** Misuse of RCU: unbalanced rcu_read_unlock, synchronize_rcu inside a read-side section. Kind `rcu`. */
export class RcuError extends KernelFault {
  override name = 'RcuError';
  constructor(message: string) {
    super('rcu', message);
  }
}

/** A callback queued with {@link Rcu.callRcu}: plain code, or kernel code to run with `yield*`. */
export type RcuCallback = () => void | Kernel<void>;

type PerCpu = { readonly nesting: Cell<number>; ctr: number };
type Pending = { readonly cb: RcuCallback; readonly after: number };

/**
 * Read-copy update, modelled on Tree RCU (kernel/rcu/tree.c) for a non-preemptible kernel: a read-side
 * section disables preemption and costs only a store to this CPU's own line, so readers never share a
 * line and scale linearly; a grace period ends only after every CPU that was inside a read-side section
 * when it started has left it (a quiescent state).
 *
 * Simplification: instead of the rcu_node tree and quiescent states reported from the scheduler tick and
 * context switches, `synchronize()` samples each CPU's nesting count and, for CPUs inside a section, waits
 * until that CPU's exit counter moves (the scheme of userspace RCU, liburcu). Grace periods are not
 * batched: each `synchronize()` runs its own.
 *
 * Callbacks (`callRcu`, `kfreeRcu`) run after a later grace period, in the task that completed it. Built
 * with a {@link Machine}, the first `callRcu` spawns an `rcu_gp` kthread on the calling CPU that runs
 * grace periods until no callback is left (like the kernel's rcu_gp kthread); built with a CPU count
 * (for `runSync`), callbacks run at the next `synchronize()` or `barrier()`.
 *
 * Misuse stops the run with an {@link RcuError} naming the CPU: rcu_read_unlock without rcu_read_lock,
 * synchronize_rcu inside a read-side section, and (on a machine) a CPU that ends the run inside one.
 */
export class Rcu {
  readonly cpuCount: number;
  private readonly percpu: PerCpu[];
  private readonly machine: Machine | null;
  /** `rcu_state.gp_seq`: the line grace periods start and end on. */
  private readonly gpLine = new MemoryLine('rcu_state');
  private gpStarted = 0;
  private gpCompleted = 0;
  private pending: Pending[] = [];
  private kthreadAlive = false;

  constructor(machineOrCpus: Machine | number) {
    if (typeof machineOrCpus === 'number') {
      this.machine = null;
      this.cpuCount = machineOrCpus;
    } else {
      this.machine = machineOrCpus;
      this.cpuCount = machineOrCpus.cpuCount;
    }
    this.percpu = Array.from({ length: this.cpuCount }, (_, i) => ({
      nesting: new Cell(0, new MemoryLine(`rcu_data[${i}]`)),
      ctr: 0,
    }));
    this.machine?.atEnd(() => {
      for (let i = 0; i < this.cpuCount; i++) {
        const n = this.percpu[i].nesting.value;
        if (n !== 0) {
          throw new RcuError(
            `CPU ${i} ended inside an RCU read-side critical section (nesting ${n}): an rcu_read_lock without rcu_read_unlock`,
          );
        }
      }
    });
  }

  /** Grace periods completed so far. */
  get completed(): number {
    return this.gpCompleted;
  }

  /** Callbacks waiting for a grace period. */
  get pendingCallbacks(): number {
    return this.pending.length;
  }

  /** Whether CPU `cpu` is inside a read-side section (plain read for assertions). */
  isReading(cpu: number): boolean {
    return this.percpu[cpu].nesting.value > 0;
  }

  /** `rcu_read_lock()`: disables preemption and bumps this CPU's nesting count (a CPU-local store). */
  *readLock(): Kernel<void> {
    // current() inlined (the same Self effect, one generator fewer: every speculative fault takes this).
    const c = currentOf((yield selfEffect) as SelfInfo);
    if (c.task) c.task.preemptCount++;
    const p = this.percpu[c.cpu];
    yield writeEffect(p.nesting.line);
    p.nesting.value++;
  }

  /** `rcu_read_unlock()`: leaves the section; the outermost unlock is a quiescent point for this CPU. */
  *readUnlock(): Kernel<void> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    const p = this.percpu[c.cpu];
    if (p.nesting.value <= 0) {
      throw new RcuError(
        `rcu_read_unlock by ${describeCurrent(c)} without a matching rcu_read_lock on CPU ${c.cpu}`,
      );
    }
    yield writeEffect(p.nesting.line);
    p.nesting.value--;
    if (p.nesting.value === 0) p.ctr++;
    if (c.task) c.task.preemptCount--;
  }

  /**
   * `synchronize_rcu()`: waits until every read-side section that was running when it was called has
   * ended, then runs the callbacks whose grace period is over.
   */
  *synchronize(): Kernel<void> {
    const c = yield* current();
    if (this.percpu[c.cpu].nesting.value > 0) {
      throw new RcuError(
        `synchronize_rcu by ${describeCurrent(c)} inside an RCU read-side critical section on CPU ${c.cpu}: it would wait for itself`,
      );
    }
    yield rmwEffect(this.gpLine);
    const gp = ++this.gpStarted;
    const waitFor: Array<{ cpu: number; ctr: number }> = [];
    for (let i = 0; i < this.cpuCount; i++) {
      if (i === c.cpu) continue;
      const p = this.percpu[i];
      yield readEffect(p.nesting.line);
      if (p.nesting.value > 0) waitFor.push({ cpu: i, ctr: p.ctr });
    }
    while (waitFor.length > 0) {
      for (let j = waitFor.length - 1; j >= 0; j--) {
        const p = this.percpu[waitFor[j].cpu];
        yield readEffect(p.nesting.line);
        if (p.nesting.value === 0 || p.ctr !== waitFor[j].ctr) waitFor.splice(j, 1);
      }
      if (waitFor.length === 0) break;
      yield* yieldCpu();
      yield* cpuRelax('synchronize_rcu');
    }
    yield rmwEffect(this.gpLine);
    if (gp > this.gpCompleted) this.gpCompleted = gp;
    yield* this.invokeCallbacks(gp);
  }

  /** `call_rcu()`: runs `cb` after a grace period that starts after this call. */
  *callRcu(cb: RcuCallback): Kernel<void> {
    yield rmwEffect(this.gpLine);
    this.pending.push({ cb, after: this.gpStarted });
    if (this.machine && !this.kthreadAlive) {
      const c = yield* current();
      this.kthreadAlive = true;
      const rcu = this;
      this.machine.spawn(c.cpu, 'rcu_gp', function* () {
        while (rcu.pending.length > 0) yield* rcu.synchronize();
        rcu.kthreadAlive = false;
      });
    }
  }

  /** `kfree_rcu()`: poisons `obj` once a grace period has passed. */
  *kfreeRcu(obj: Poisonable, label = 'object'): Kernel<void> {
    const c = yield* current();
    const who = describeCurrent(c);
    yield* this.callRcu(() => {
      obj.poison(`kfree_rcu of ${label} by ${who}, after grace period ${this.gpCompleted}`);
    });
  }

  /** `rcu_barrier()`: waits until every callback queued so far has run. */
  *barrier(): Kernel<void> {
    while (this.pending.length > 0) yield* this.synchronize();
  }

  private *invokeCallbacks(gp: number): Kernel<void> {
    const ready = this.pending.filter((p) => p.after < gp);
    if (ready.length === 0) return;
    this.pending = this.pending.filter((p) => p.after >= gp);
    for (const p of ready) {
      const r = p.cb();
      if (r && typeof (r as Kernel<void>).next === 'function') yield* r as Kernel<void>;
    }
  }
}
