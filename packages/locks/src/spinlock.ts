import {
  AtomicCell,
  Cell,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  localIrqRestore,
  localIrqSave,
  MemoryLine,
  writeEffect,
  rmwEffect,
  type SelfInfo,
  selfEffect,
  spinWaitEffect,
  irqDisableEffect,
  irqRestoreEffect,
} from '@spf/machine';
import { type Current, currentOf, describeCurrent, irqsEnabled } from './current.js';
import { LockError } from './lock-error.js';
import { activeLockdep, type Lockdep, type LockdepMap, resolveLockdep } from './lockdep.js';

/** Options of {@link RawSpinLock} and {@link SpinLock}. */
export type SpinLockOptions = {
  /** Lock class for lockdep (default: the name). */
  readonly lockClass?: string;
  /** Validator to report to; `false` for none; default {@link defaultLockdep}. */
  readonly lockdep?: Lockdep | false;
  /** Put the lock word on this line (a field of a larger struct) instead of a line of its own. */
  readonly line?: MemoryLine;
};

/**
 * `raw_spinlock_t`: a ticket spinlock, the x86 `arch_spinlock_t` of Linux 2.6.25 to 4.1
 * (arch/x86/include/asm/spinlock.h: `head` and `tail` tickets in one word). A CPU takes a ticket with one
 * locked `xadd` and spins with PAUSE until `head` reaches it, so waiters are served in FIFO order and
 * every waiter keeps re-reading the one lock line (which is why ticket locks stop scaling and Linux moved
 * to queued spinlocks in 4.2; we keep tickets for their simple fairness).
 *
 * `lock()` disables preemption (`preempt_disable()` in `__raw_spin_lock()`, include/linux/spinlock_api_smp.h),
 * so sleeping with it held is reported. Debug checks (`kernel/locking/spinlock_debug.c`): unlocking a
 * lock that is not held, or held by another task, stops the run with a {@link LockError}.
 */
export class RawSpinLock implements LockdepMap {
  /** Next ticket to hand out (`tickets.tail`). */
  readonly next: AtomicCell;
  /** Ticket being served (`tickets.head`); shares the line with `next`. */
  readonly owner: Cell<number>;
  readonly lockClass: string;
  readonly waitKind = 'spin' as const;
  /** Task holding the lock and its CPU (`lock->owner`, `lock->owner_cpu` of spinlock debugging). */
  private holder: Current | null = null;
  private readonly ld: Lockdep | null;

  constructor(
    readonly name: string,
    opts: SpinLockOptions = {},
  ) {
    const line = opts.line ?? new MemoryLine(name);
    this.next = new AtomicCell(0, line);
    this.owner = new Cell(0, line);
    this.lockClass = opts.lockClass ?? name;
    this.ld = resolveLockdep(opts.lockdep);
  }

  /** The cache line of the lock word. */
  get line(): MemoryLine {
    return this.next.line;
  }

  /** `spin_is_locked()`: a plain read for assertions (no effect). */
  isLocked(): boolean {
    return this.owner.value !== this.next.value;
  }

  /** Name of the holder for reports, or null. */
  holderName(): string | null {
    return this.holder ? describeCurrent(this.holder) : null;
  }

  /** `spin_lock()`: disables preemption, then spins until this CPU's ticket is served. */
  *lock(): Kernel<void> {
    // enter(false, undefined) and archSpinLock() inlined (keep in step with them): spin_lock() is on every
    // fault, and each generator level costs host time on every effect below it. The same effects in order.
    const c = currentOf((yield selfEffect) as SelfInfo);
    if (c.task) c.task.preemptCount++;
    const ld = activeLockdep(this.ld);
    if (ld) {
      const irqsOn = (yield irqDisableEffect) as boolean;
      yield irqRestoreEffect(irqsOn);
      ld.acquire(this, c, { irqsEnabled: irqsOn, subclass: undefined });
    }
    const next = this.next;
    yield next.line.rmwEffect;
    const ticket = next.value;
    next.value = ticket + 1;
    const owner = this.owner;
    yield owner.line.readEffect;
    if (owner.value !== ticket) yield* this.waitForTicket(ticket);
    this.holder = c;
  }

  /** `spin_lock_nested(lock, subclass)`: as {@link RawSpinLock.lock} with a lockdep nesting subclass. */
  *lockNested(subclass: number): Kernel<void> {
    const c = yield* this.enter(false, undefined, subclass);
    yield* this.archSpinLock();
    this.holder = c;
  }

  /** `spin_trylock()`: takes the lock only if it is free right now; returns whether it did. */
  *trylock(): Kernel<boolean> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    if (c.task) c.task.preemptCount++;
    const ok = yield* this.archSpinTrylock();
    if (!ok) {
      if (c.task) c.task.preemptCount--;
      return false;
    }
    this.holder = c;
    const ld = activeLockdep(this.ld);
    if (ld) ld.acquire(this, c, { trylock: true, irqsEnabled: yield* irqsEnabled() });
    return true;
  }

  /** `spin_unlock()`: serves the next ticket, then re-enables preemption. */
  *unlock(): Kernel<void> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    this.checkUnlock(c);
    const ld = activeLockdep(this.ld);
    if (ld) ld.release(this, c);
    this.holder = null;
    yield writeEffect(this.line); // archSpinUnlock(), inlined
    this.owner.value++;
    if (c.task) c.task.preemptCount--;
  }

  /** `spin_lock_irq()`: disables interrupts, then locks. */
  *lockIrq(): Kernel<void> {
    yield* localIrqDisable();
    const c = yield* this.enter(true, false);
    yield* this.archSpinLock();
    this.holder = c;
  }

  /** `spin_unlock_irq()`: unlocks, then enables interrupts. */
  *unlockIrq(): Kernel<void> {
    yield* this.unlock();
    yield* localIrqEnable();
  }

  /** `spin_lock_irqsave()`: disables interrupts, locks, and returns the previous interrupt state. */
  *lockIrqsave(): Kernel<boolean> {
    const flags = yield* localIrqSave();
    const c = yield* this.enter(true, false);
    yield* this.archSpinLock();
    this.holder = c;
    return flags;
  }

  /** `spin_unlock_irqrestore()`: unlocks and restores the interrupt state `flags` from `lockIrqsave`. */
  *unlockIrqrestore(flags: boolean): Kernel<void> {
    yield* this.unlock();
    yield* localIrqRestore(flags);
  }

  /**
   * `arch_spin_lock()`: takes a ticket with a locked xadd on the lock word and spins until it is served.
   * Returns the ticket (its place in the FIFO). No preemption or lockdep bookkeeping: use {@link lock}.
   */
  *archSpinLock(): Kernel<number> {
    // The Cell operations inlined (`next.fetchAdd(1)`, `owner.load()`): the same effects, one generator fewer.
    const next = this.next;
    yield next.line.rmwEffect;
    const ticket = next.value;
    next.value = ticket + 1;
    const owner = this.owner;
    yield owner.line.readEffect;
    if (owner.value !== ticket) yield* this.waitForTicket(ticket);
    return ticket;
  }

  /**
   * The waiters' loop of `arch_spin_lock()` after a first look found `head` short of `ticket`: PAUSE and
   * re-read the lock word until `head` reaches the ticket. A pure spin-wait with its exit condition stated,
   * so the machine performs the iterations itself (the same steps as the plain loop) and resumes this code
   * only when the ticket is served.
   */
  private *waitForTicket(ticket: number): Kernel<void> {
    const owner = this.owner;
    const served = () => owner.value === ticket;
    const wait = spinWaitEffect(owner.line, this.name, undefined, served);
    while (!served()) yield wait;
  }

  /** `arch_spin_trylock()`: a cmpxchg that takes a ticket only if it would be served at once. */
  *archSpinTrylock(): Kernel<boolean> {
    yield rmwEffect(this.line);
    if (this.owner.value !== this.next.value) return false;
    this.next.value++;
    return true;
  }

  /** `arch_spin_unlock()`: `head++` (a plain add on x86, as only the holder writes `head`). */
  *archSpinUnlock(): Kernel<void> {
    yield writeEffect(this.line);
    this.owner.value++;
  }

  private *enter(irqsOff: boolean, known: boolean | undefined, subclass?: number): Kernel<Current> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    if (c.task) c.task.preemptCount++;
    const ld = activeLockdep(this.ld);
    if (ld) {
      let irqsOn = false;
      if (!irqsOff) {
        if (known !== undefined) irqsOn = known;
        else {
          // irqsEnabled() inlined: the same save/restore pair, one generator fewer on every spin_lock().
          irqsOn = (yield irqDisableEffect) as boolean;
          yield irqRestoreEffect(irqsOn);
        }
      }
      ld.acquire(this, c, { irqsEnabled: irqsOn, subclass });
    }
    return c;
  }

  private checkUnlock(c: Current): void {
    if (!this.isLocked()) {
      throw new LockError(
        `spin_unlock of '${this.name}' by ${describeCurrent(c)}, but the lock is not held; every unlock needs a matching lock`,
      );
    }
    const h = this.holder;
    if (h && h.task !== c.task) {
      throw new LockError(
        `spin_unlock of '${this.name}' by ${describeCurrent(c)}, but it is held by ${describeCurrent(h)}; only the holder may unlock`,
      );
    }
  }
}

/**
 * `spinlock_t` (include/linux/spinlock.h). Without PREEMPT_RT it is a {@link RawSpinLock} with the same
 * operations, which is what we model.
 */
export class SpinLock extends RawSpinLock {}
