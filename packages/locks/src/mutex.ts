import {
  block,
  Cell,
  type Kernel,
  MemoryLine,
  type Task,
  WaitQueue,
  wakeTask,
  rmwEffect,
} from '@spf/machine';
import { type Current, current, describeCurrent, irqsEnabled } from './current.js';
import { LockError } from './lock-error.js';
import { activeLockdep, type Lockdep, type LockdepMap, resolveLockdep } from './lockdep.js';
import { RawSpinLock } from './spinlock.js';

/** Options of {@link Mutex}. */
export type MutexOptions = {
  /** Validator to report to; `false` for none; default {@link defaultLockdep}. */
  readonly lockdep?: Lockdep | false;
  /** Lock class for lockdep (default: the name). */
  readonly lockClass?: string;
};

/** `lock->owner`: the owning task plus MUTEX_FLAG_WAITERS, MUTEX_FLAG_HANDOFF and MUTEX_FLAG_PICKUP. */
export type MutexOwner = {
  readonly task: Task | null;
  readonly waiters: boolean;
  readonly handoff: boolean;
  readonly pickup: boolean;
};

type Waiter = { readonly task: Task; woken: boolean };
const FREE: MutexOwner = { task: null, waiters: false, handoff: false, pickup: false };

/**
 * `struct mutex` following kernel/locking/mutex.c: an owner word that holds the owning task and three
 * flags, a wait lock and a FIFO wait list.
 *
 * - lock: one cmpxchg of the owner from 0 to `current`; otherwise queue (setting WAITERS) and sleep,
 *   retrying `__mutex_trylock()` after every wake-up. The first waiter, once woken, sets HANDOFF: the
 *   next unlock then gives the mutex directly to it (`__mutex_handoff()`, PICKUP) so it cannot starve.
 * - unlock: one cmpxchg back to 0 when no flag is set; otherwise clear the owner (or hand off) and wake
 *   the first waiter.
 *
 * Simplifications: no optimistic spinning (OSQ), no ww_mutex, no signals (the killable variants).
 * Checks: unlocking a mutex that is not locked, or locked by another task, stops the run with a
 * {@link LockError} naming the mutex and CPU.
 */
export class Mutex implements LockdepMap {
  readonly owner: Cell<MutexOwner>;
  readonly waitQueue: WaitQueue;
  readonly lockClass: string;
  readonly waitKind = 'sleep' as const;
  private readonly waitLock: RawSpinLock;
  private readonly waitList: Waiter[] = [];
  private readonly ld: Lockdep | null;
  private holder: Current | null = null;

  constructor(
    readonly name: string,
    opts: MutexOptions = {},
  ) {
    const line = new MemoryLine(name);
    this.owner = new Cell(FREE, line);
    this.waitQueue = new WaitQueue(name);
    this.waitQueue.describe = () => (this.holder ? describeCurrent(this.holder) : 'nobody');
    this.waitLock = new RawSpinLock(`${name}.wait_lock`, { line, lockdep: false });
    this.ld = resolveLockdep(opts.lockdep);
    this.lockClass = opts.lockClass ?? name;
  }

  /** `mutex_is_locked()`: a plain read for assertions. */
  isLocked(): boolean {
    return this.owner.value.task !== null;
  }

  /** `mutex_lock()`: sleeps until the mutex is ours. */
  *lock(): Kernel<void> {
    const c = yield* current();
    const ld = activeLockdep(this.ld);
    if (ld) {
      ld.mightSleep(this.name, c, yield* irqsEnabled());
      ld.acquire(this, c, {});
    }
    const me = c.task!;
    if (!(yield* this.trylockFast(me))) yield* this.lockSlowpath(me);
    this.holder = c;
  }

  /** `mutex_trylock()`: takes the mutex only if it is free now. */
  *trylock(): Kernel<boolean> {
    const c = yield* current();
    const ok = yield* this.trylockFast(c.task!);
    if (ok) {
      this.holder = c;
      activeLockdep(this.ld)?.acquire(this, c, { trylock: true });
    }
    return ok;
  }

  /** `mutex_unlock()`. */
  *unlock(): Kernel<void> {
    const c = yield* current();
    const o = this.owner.value;
    if (o.task === null || o.task !== c.task) {
      throw new LockError(
        `mutex_unlock of '${this.name}' by ${describeCurrent(c)}, but ${o.task === null ? 'it is not locked' : `it is held by ${describeCurrent(this.holder!)}`}; only the owner may unlock`,
      );
    }
    activeLockdep(this.ld)?.release(this, c);
    this.holder = null;
    // __mutex_unlock_fast() and the first half of __mutex_unlock_slowpath() as one cmpxchg loop.
    yield rmwEffect(this.owner.line);
    const owner = this.owner.value;
    if (!owner.handoff) {
      this.owner.value = { ...owner, task: null };
      if (!owner.waiters) return;
    }
    yield* this.waitLock.lock();
    const next = this.waitList[0];
    if (owner.handoff && next) {
      // __mutex_handoff(): give it to the first waiter, which picks it up when it runs.
      yield rmwEffect(this.owner.line);
      this.owner.value = { ...this.owner.value, task: next.task, handoff: false, pickup: true };
    } else if (owner.handoff) {
      yield rmwEffect(this.owner.line);
      this.owner.value = { ...this.owner.value, task: null, handoff: false };
    }
    yield* this.waitLock.unlock();
    if (next) {
      // wake_up_q(): only now, after a handoff is visible, may the waiter stop waiting.
      next.woken = true;
      yield* wakeTask(next.task);
    }
  }

  /** `__mutex_trylock_fast()` / `__mutex_trylock()`: take a free mutex, or pick up one handed to us. */
  private *trylockFast(me: Task, setHandoff = false): Kernel<boolean> {
    yield rmwEffect(this.owner.line);
    const o = this.owner.value;
    if (o.task === null) {
      this.owner.value = { ...o, task: me, handoff: false, pickup: false };
      return true;
    }
    if (o.pickup && o.task === me) {
      this.owner.value = { ...o, pickup: false };
      return true;
    }
    if (setHandoff && !o.pickup && !o.handoff) this.owner.value = { ...o, handoff: true };
    return false;
  }

  /** `__mutex_lock_common()` without optimistic spinning. */
  private *lockSlowpath(me: Task): Kernel<void> {
    const w: Waiter = { task: me, woken: false };
    yield* this.waitLock.lock();
    this.waitList.push(w);
    yield rmwEffect(this.owner.line);
    this.owner.value = { ...this.owner.value, waiters: true };
    if (!(yield* this.trylockFast(me))) {
      for (;;) {
        yield* this.waitLock.unlock();
        yield* block(this.waitQueue, () => w.woken, `${this.name} (mutex_lock)`);
        w.woken = false;
        const first = this.waitList[0] === w;
        if (yield* this.trylockFast(me, first)) break;
        yield* this.waitLock.lock();
      }
      yield* this.waitLock.lock();
    }
    this.waitList.splice(this.waitList.indexOf(w), 1);
    if (this.waitList.length === 0) {
      yield rmwEffect(this.owner.line);
      this.owner.value = { ...this.owner.value, waiters: false, handoff: false };
    }
    yield* this.waitLock.unlock();
  }
}
