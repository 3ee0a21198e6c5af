import {
  AtomicCell,
  block,
  Cell,
  cpuRelax,
  type Kernel,
  kassert,
  MemoryLine,
  now,
  rmwLoopEffect,
  type Task,
  WaitQueue,
  wakeTask,
  type SelfInfo,
  selfEffect,
} from '@spf/machine';
import { type Current, current, currentOf, describeCurrent, irqsEnabled } from './current.js';
import type { RwsemPaths, RwsemState, RwsemWaiter } from './rwsem-paths.js';
import { LockError } from './lock-error.js';
import { activeLockdep, type Lockdep, type LockdepMap, resolveLockdep } from './lockdep.js';
import type { SleepingRwLock } from './sleeping-rw-lock.js';
import { RawSpinLock } from './spinlock.js';

/** Bit 0 of the count: a writer holds the lock. */
export const RWSEM_WRITER_LOCKED = 1;
/** Bit 1: the wait list is not empty, so releasers must take the slow path and wake someone. */
export const RWSEM_FLAG_WAITERS = 2;
/** Bit 2: a waiter that waited too long asks for the lock to be handed to it; nobody may steal it. */
export const RWSEM_FLAG_HANDOFF = 4;
/** Readers are counted from bit 8 up. */
export const RWSEM_READER_SHIFT = 8;
export const RWSEM_READER_BIAS = 1 << RWSEM_READER_SHIFT;
const READER_MASK = ~(RWSEM_READER_BIAS - 1);
const LOCK_MASK = RWSEM_WRITER_LOCKED | READER_MASK;
const READ_FAILED_MASK = RWSEM_WRITER_LOCKED | RWSEM_FLAG_WAITERS | RWSEM_FLAG_HANDOFF;
/** At most this many readers are woken at once (MAX_READERS_WAKEUP). */
const MAX_READERS_WAKEUP = 0x100;
/** RWSEM_WAIT_TIMEOUT: DIV_ROUND_UP(HZ, 250) jiffies, 4 ms at HZ=1000. */
export const RWSEM_WAIT_TIMEOUT_NS = 4_000_000;

/** Options of {@link RwSemaphore}. */
export type RwSemaphoreOptions = {
  /** Replace down_read/up_read/down_write/up_write by pluggable paths (see rwsem-paths.ts). */
  readonly paths?: RwsemPaths;
  /** Writers spin on a running writer owner before sleeping (CONFIG_RWSEM_SPIN_ON_OWNER); default true. */
  readonly optimisticSpin?: boolean;
  /** Validator to report to; `false` for none; default {@link defaultLockdep}. */
  readonly lockdep?: Lockdep | false;
  /** Lock class for lockdep (default: the name). */
  readonly lockClass?: string;
  /** How long a waiter waits before it may set the handoff bit (default 4 ms, RWSEM_WAIT_TIMEOUT). */
  readonly handoffTimeoutNs?: number;
};

type Owner = { readonly task: Task | null; readonly readerOwned: boolean };
type Waiter = RwsemWaiter & {
  readonly task: Task;
  /** The wake-up of a sleeping writer (TASK_RUNNING set by wake_up_q before it calls schedule()). */
  woken: boolean;
  readonly timeout: number;
  handoffSet: boolean;
};
type WakeType = 'any' | 'readers' | 'read-owned';

const NO_OWNER: Owner = { task: null, readerOwned: false };

/**
 * `struct rw_semaphore` following kernel/locking/rwsem.c (Linux 5.3 and later, Waiman Long's rewrite):
 * one atomic count word holding a writer bit, a waiters bit, a handoff bit and the reader count, an owner
 * word, a wait lock and a FIFO wait list, all on one cache line.
 *
 * - down_read adds a reader bias with one `lock xadd` and is done unless a writer, waiter or handoff bit
 *   is set (`rwsem_read_trylock()`); otherwise it takes `rwsem_down_read_slowpath()`.
 * - down_write is one cmpxchg from 0; otherwise `rwsem_down_write_slowpath()`: optionally spin while the
 *   owner writer runs, then queue and sleep, retrying `rwsem_try_write_lock()` on every wake-up.
 * - A queued waiter holds back later readers: the waiters bit sends them to the slow path, where they
 *   queue behind it when the lock is reader-owned (readers may still steal a free lock). After
 *   {@link RWSEM_WAIT_TIMEOUT_NS} the first waiter sets the handoff bit and nobody may steal any more.
 * - Releases wake the first waiter (`rwsem_mark_wake()`): a writer is woken to retry, readers at the
 *   head of the queue (up to 256, skipping writers) are granted the lock directly.
 *
 * Simplifications: no OSQ (spinners spin on the owner word directly), writers do not spin on a
 * reader-owned lock, no RT-task rules, no signal handling (killable variants), no reader-count overflow
 * handling. The owner's "on CPU" test is: the task is runnable and on another CPU.
 *
 * Checks: up_read with no reader, up_write by a non-owner, and (a built-in checker) a reader or writer
 * entering while a writer holds it, stop the run naming the lock and CPU.
 */
export class RwSemaphore implements RwsemState, SleepingRwLock, LockdepMap {
  readonly count: AtomicCell;
  /** `sem->owner`: the writer task, or a reader with the reader-owned bit; shares the count's line. */
  readonly owner: Cell<Owner>;
  readonly waitQueue: WaitQueue;
  readonly lockClass: string;
  readonly waitKind = 'sleep' as const;
  private readonly waitLock: RawSpinLock;
  private readonly waitList: Waiter[] = [];
  private readonly paths: RwsemPaths | null;
  private readonly pathState: RwsemState;
  private readonly spin: boolean;
  private readonly ld: Lockdep | null;
  private readonly timeoutNs: number;
  private writer: Current | null = null;
  private readerCount = 0;

  constructor(
    readonly name: string,
    opts: RwSemaphoreOptions = {},
  ) {
    const line = new MemoryLine(name);
    this.count = new AtomicCell(0, line);
    this.owner = new Cell(NO_OWNER, line);
    this.waitQueue = new WaitQueue(name);
    this.waitQueue.describe = () => this.describeHolders();
    this.waitLock = new RawSpinLock(`${name}.wait_lock`, { line, lockdep: false });
    this.paths = opts.paths ?? null;
    // Pluggable paths get a view of the state, never the lock itself: its own built-in paths must not be
    // reachable from theirs (a lab could otherwise hand back the kernel's implementation).
    this.pathState = Object.freeze({
      count: this.count,
      waitQueue: this.waitQueue,
      waiters: this.waitList,
      name,
    });
    this.spin = opts.optimisticSpin ?? true;
    this.ld = resolveLockdep(opts.lockdep);
    this.lockClass = opts.lockClass ?? name;
    this.timeoutNs = opts.handoffTimeoutNs ?? RWSEM_WAIT_TIMEOUT_NS;
  }

  /** The cache line of the count, owner and wait lock. */
  get line(): MemoryLine {
    return this.count.line;
  }

  /** The wait list (for {@link RwsemState}; the real implementation keeps its own richer waiters here). */
  get waiters(): RwsemWaiter[] {
    return this.waitList;
  }

  /** `rwsem_is_locked()`: a plain read for assertions. */
  isLocked(): boolean {
    return this.writer !== null || this.readerCount > 0;
  }

  /** Whether a writer holds it (`rwsem_is_write_locked`-style assertion helper). */
  isWriteLocked(): boolean {
    return this.writer !== null;
  }

  /** Number of readers holding it now. */
  readers(): number {
    return this.readerCount;
  }

  /** Who holds it, for deadlock reports. */
  describeHolders(): string {
    if (this.writer) return `writer ${describeCurrent(this.writer)}`;
    if (this.readerCount > 0) return `${this.readerCount} reader(s)`;
    return 'nobody';
  }

  // ---- public operations -----------------------------------------------------------------------------

  /** `down_read()`: shared acquisition; sleeps while a writer holds it or a waiter is queued. */
  *downRead(): Kernel<void> {
    const c = yield* this.lockdepAcquire(true, false);
    if (this.paths) yield* this.paths.downRead(this.pathState);
    else {
      const count = yield* this.count.addReturn(RWSEM_READER_BIAS);
      if (count & READ_FAILED_MASK) yield* this.downReadSlowpath(count, c);
      else yield* this.setReaderOwned(c);
    }
    this.enteredRead(c);
  }

  /**
   * `down_read_killable()`: as {@link downRead}; returns 0 (or -EINTR in the kernel when a fatal signal
   * arrives while waiting). The machine has no signals, so it always returns 0.
   */
  *downReadKillable(): Kernel<number> {
    yield* this.downRead();
    return 0;
  }

  /** `down_write_killable()`: as {@link downWrite}; always returns 0 (no signals on the machine). */
  *downWriteKillable(): Kernel<number> {
    yield* this.downWrite();
    return 0;
  }

  /** `down_read_trylock()`: takes a read hold only if no writer, waiter or handoff is there. */
  *downReadTrylock(): Kernel<boolean> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    let ok: boolean;
    if (this.paths)
      ok = this.paths.downReadTrylock ? yield* this.paths.downReadTrylock(this.pathState) : false;
    else {
      // The Cell operations are inlined here (`count.load()`, `count.cmpxchg()`, `setReaderOwned()`): the
      // same effects in the same order, without a generator per operation on the fault path.
      // The cmpxchg retry loop is one rmwLoopEffect: the same steps, and after a failed attempt (another
      // reader moved the count) the machine attempts again without resuming this code.
      ok = false;
      const count = this.count;
      yield count.line.readEffect;
      let tmp = count.value;
      if (!(tmp & READ_FAILED_MASK)) {
        yield rmwLoopEffect(count.line, undefined, () => {
          const old = count.value;
          if (old === tmp) {
            count.value = tmp + RWSEM_READER_BIAS;
            ok = true;
            return false;
          }
          tmp = old;
          return !(tmp & READ_FAILED_MASK);
        });
      }
      if (ok) {
        const owner: Owner = { task: c.task, readerOwned: true };
        yield this.owner.line.writeEffect;
        this.owner.value = owner;
      }
    }
    if (ok) {
      this.enteredRead(c);
      activeLockdep(this.ld)?.acquire(this, c, { read: true, trylock: true });
    }
    return ok;
  }

  /** `up_read()`: drops a read hold; the last reader wakes a waiting writer. */
  *upRead(): Kernel<void> {
    const c = currentOf((yield selfEffect) as SelfInfo);
    if (this.readerCount === 0) {
      throw new LockError(
        `up_read of '${this.name}' by ${describeCurrent(c)}, but no reader holds it (${this.describeHolders()}); every up_read needs a matching down_read`,
      );
    }
    activeLockdep(this.ld)?.release(this, c);
    this.readerCount--;
    if (this.paths) {
      yield* this.paths.upRead(this.pathState);
      return;
    }
    yield this.count.line.rmwEffect; // count.addReturn(-RWSEM_READER_BIAS), inlined
    const tmp = (this.count.value -= RWSEM_READER_BIAS);
    if ((tmp & (LOCK_MASK | RWSEM_FLAG_WAITERS)) === RWSEM_FLAG_WAITERS) yield* this.rwsemWake();
  }

  /** `down_write()`: exclusive acquisition. */
  *downWrite(): Kernel<void> {
    yield* this.downWriteCommon(0);
  }

  /** `down_write_nested(sem, subclass)`: as {@link downWrite} with a lockdep nesting subclass. */
  *downWriteNested(subclass: number): Kernel<void> {
    yield* this.downWriteCommon(subclass);
  }

  /** `down_write_trylock()`: one cmpxchg from unlocked to writer-locked. */
  *downWriteTrylock(): Kernel<boolean> {
    const c = yield* current();
    let ok: boolean;
    if (this.paths)
      ok = this.paths.downWriteTrylock ? yield* this.paths.downWriteTrylock(this.pathState) : false;
    else {
      ok = (yield* this.count.cmpxchg(0, RWSEM_WRITER_LOCKED)) === 0;
      if (ok) yield* this.owner.store({ task: c.task, readerOwned: false });
    }
    if (ok) {
      this.enteredWrite(c);
      activeLockdep(this.ld)?.acquire(this, c, { trylock: true });
    }
    return ok;
  }

  /** `up_write()`: releases the write hold and wakes the first waiter if there is one. */
  *upWrite(): Kernel<void> {
    const c = yield* current();
    this.checkWriter(c, 'up_write');
    activeLockdep(this.ld)?.release(this, c);
    this.writer = null;
    if (this.paths) {
      yield* this.paths.upWrite(this.pathState);
      return;
    }
    yield* this.owner.store(NO_OWNER);
    const tmp = yield* this.count.fetchAdd(-RWSEM_WRITER_LOCKED);
    if (tmp & RWSEM_FLAG_WAITERS) yield* this.rwsemWake();
  }

  /**
   * `downgrade_write()`: turns the caller's write hold into a read hold atomically (no writer can get in
   * between) and wakes the readers queued at the head (`rwsem_downgrade_wake()`).
   */
  *downgradeWrite(): Kernel<void> {
    const c = yield* current();
    this.checkWriter(c, 'downgrade_write');
    activeLockdep(this.ld)?.downgrade(this, c);
    if (this.paths) {
      if (this.paths.downgradeWrite) {
        this.writer = null;
        this.readerCount++;
        yield* this.paths.downgradeWrite(this.pathState);
      } else {
        this.writer = null;
        yield* this.paths.upWrite(this.pathState);
        yield* this.paths.downRead(this.pathState);
        this.enteredRead(c);
      }
      return;
    }
    const tmp = yield* this.count.fetchAdd(RWSEM_READER_BIAS - RWSEM_WRITER_LOCKED);
    this.writer = null;
    this.readerCount++;
    yield* this.setReaderOwned(c);
    if (tmp & RWSEM_FLAG_WAITERS) {
      yield* this.waitLock.lockIrq();
      const q: Task[] = [];
      if (this.waitList.length > 0) yield* this.markWake('read-owned', q);
      yield* this.waitLock.unlockIrq();
      yield* wakeUpQ(q);
    }
  }

  // ---- internals -------------------------------------------------------------------------------------

  private *lockdepAcquire(read: boolean, _trylock: boolean, subclass = 0): Kernel<Current> {
    const c = yield* current();
    const ld = activeLockdep(this.ld);
    if (ld) {
      ld.mightSleep(this.name, c, yield* irqsEnabled());
      ld.acquire(this, c, { read, subclass });
    }
    return c;
  }

  private *downWriteCommon(subclass: number): Kernel<void> {
    const c = yield* this.lockdepAcquire(false, false, subclass);
    if (this.paths) yield* this.paths.downWrite(this.pathState);
    else {
      if ((yield* this.count.cmpxchg(0, RWSEM_WRITER_LOCKED)) !== 0) yield* this.downWriteSlowpath(c);
      yield* this.owner.store({ task: c.task, readerOwned: false });
    }
    this.enteredWrite(c);
  }

  private enteredRead(c: Current): void {
    kassert(
      this.writer === null,
      () =>
        `rwsem '${this.name}': reader ${describeCurrent(c)} entered while writer ${describeCurrent(this.writer!)} holds it`,
    );
    this.readerCount++;
  }

  private enteredWrite(c: Current): void {
    kassert(
      this.writer === null && this.readerCount === 0,
      () =>
        `rwsem '${this.name}': writer ${describeCurrent(c)} entered while ${this.describeHolders()} hold(s) it`,
    );
    this.writer = c;
  }

  private checkWriter(c: Current, op: string): void {
    if (this.writer === null || this.writer.task !== c.task) {
      throw new LockError(
        `${op} of '${this.name}' by ${describeCurrent(c)}, which does not hold it for writing (${this.describeHolders()})`,
      );
    }
  }

  /** `rwsem_set_reader_owned()`: records the last reader in the owner word (same line as the count). */
  private *setReaderOwned(c: Current): Kernel<void> {
    yield* this.owner.store({ task: c.task, readerOwned: true });
  }

  /** `rwsem_down_read_slowpath()`. Our reader bias is already in the count. */
  private *downReadSlowpath(count: number, c: Current): Kernel<void> {
    let adjustment = -RWSEM_READER_BIAS;
    const rcnt = count >>> RWSEM_READER_SHIFT;
    const owner = yield* this.owner.load();
    // To keep a stream of readers from starving a sleeping writer, do not steal a reader-owned lock.
    const queueBehind = owner.readerOwned && rcnt > 1 && !(count & RWSEM_WRITER_LOCKED);
    if (!queueBehind && !(count & (RWSEM_WRITER_LOCKED | RWSEM_FLAG_HANDOFF))) {
      // Optimistic lock stealing: no writer and no handoff, so our bias gives us the lock.
      yield* this.setReaderOwned(c);
      if (rcnt === 1 && count & RWSEM_FLAG_WAITERS) {
        // The first reader in wakes the other queued readers.
        yield* this.waitLock.lockIrq();
        const q: Task[] = [];
        if (this.waitList.length > 0) yield* this.markWake('read-owned', q);
        yield* this.waitLock.unlockIrq();
        yield* wakeUpQ(q);
      }
      return;
    }
    const waiter = yield* this.newWaiter('read', c);
    yield* this.waitLock.lockIrq();
    if (this.waitList.length === 0) {
      // Nobody queued and no writer now: our bias is in the count, so we hold it.
      if (!((yield* this.count.load()) & RWSEM_WRITER_LOCKED)) {
        yield* this.waitLock.unlockIrq();
        yield* this.setReaderOwned(c);
        return;
      }
      adjustment += RWSEM_FLAG_WAITERS;
    }
    this.waitList.push(waiter);
    const cnt = yield* this.count.addReturn(adjustment);
    const q: Task[] = [];
    yield* this.condWakeWaiter(cnt, q);
    yield* this.waitLock.unlockIrq();
    yield* wakeUpQ(q);
    yield* block(this.waitQueue, () => waiter.granted, `${this.name} (down_read)`);
  }

  /**
   * The on-stack `struct rwsem_waiter` of `rwsem_down_read_slowpath()`/`rwsem_down_write_slowpath()`: the
   * caller's task and the handoff deadline (`jiffies + RWSEM_WAIT_TIMEOUT`).
   */
  private *newWaiter(kind: 'read' | 'write', c: Current): Kernel<Waiter> {
    const t0 = yield* now();
    return {
      kind,
      granted: false,
      task: c.task!,
      woken: false,
      timeout: t0 + this.timeoutNs,
      handoffSet: false,
    };
  }

  /** `rwsem_down_write_slowpath()`. */
  private *downWriteSlowpath(c: Current): Kernel<void> {
    if (this.spin && (yield* this.optimisticSpin(c))) return;
    const waiter = yield* this.newWaiter('write', c);
    yield* this.waitLock.lockIrq();
    this.waitList.push(waiter);
    if (this.waitList[0] !== waiter) {
      const cnt = yield* this.count.load();
      const q: Task[] = [];
      yield* this.condWakeWaiter(cnt, q);
      if (q.length > 0) {
        yield* this.waitLock.unlockIrq();
        yield* wakeUpQ(q);
        yield* this.waitLock.lockIrq();
      }
    } else {
      yield* this.count.update((v) => v | RWSEM_FLAG_WAITERS);
    }
    for (;;) {
      if (yield* this.tryWriteLock(waiter)) break;
      yield* this.waitLock.unlockIrq();
      let sleep = true;
      // After setting the handoff bit, spin on the owner instead of sleeping while it runs.
      if (waiter.handoffSet && this.spin && (yield* this.spinOnOwner(c)) === 'null') sleep = false;
      if (sleep) {
        yield* block(this.waitQueue, () => waiter.woken, `${this.name} (down_write)`);
        waiter.woken = false;
      }
      yield* this.waitLock.lockIrq();
    }
    waiter.granted = true;
    yield* this.waitLock.unlockIrq();
  }

  /** `rwsem_try_write_lock()`, called with the wait lock held. */
  private *tryWriteLock(waiter: Waiter): Kernel<boolean> {
    const first = this.waitList[0];
    let count = yield* this.count.load();
    let next: number;
    for (;;) {
      const hasHandoff = (count & RWSEM_FLAG_HANDOFF) !== 0;
      // Honour the handoff bit only if the first waiter set it; otherwise still try to take the lock.
      if (hasHandoff && first.handoffSet && waiter !== first) return false;
      next = count;
      if (count & LOCK_MASK) {
        if (hasHandoff) return false;
        if ((yield* now()) <= waiter.timeout) return false;
        next |= RWSEM_FLAG_HANDOFF;
      } else {
        next = (next | RWSEM_WRITER_LOCKED) & ~RWSEM_FLAG_HANDOFF;
        if (this.waitList.length === 1) next &= ~RWSEM_FLAG_WAITERS;
      }
      const old = yield* this.count.cmpxchg(count, next);
      if (old === count) break;
      count = old;
    }
    if (next & RWSEM_FLAG_HANDOFF) {
      first.handoffSet = true;
      return false;
    }
    this.waitList.splice(this.waitList.indexOf(waiter), 1);
    return true;
  }

  /** `rwsem_cond_wake_waiter()`: wake whoever can run now, given the count. Wait lock held. */
  private *condWakeWaiter(count: number, q: Task[]): Kernel<void> {
    if (count & RWSEM_WRITER_LOCKED) return;
    yield* this.markWake(count & READER_MASK ? 'readers' : 'any', q);
  }

  /** `rwsem_wake()`: called by a releaser that saw the waiters bit. */
  private *rwsemWake(): Kernel<void> {
    const flags = yield* this.waitLock.lockIrqsave();
    const q: Task[] = [];
    if (this.waitList.length > 0) yield* this.markWake('any', q);
    yield* this.waitLock.unlockIrqrestore(flags);
    yield* wakeUpQ(q);
  }

  /**
   * `rwsem_mark_wake()`, wait lock held: if the first waiter is a writer, wake it (with `any`) to retry;
   * otherwise grant the lock to up to 256 queued readers at once, adding their biases to the count, and
   * queue them for wake-up.
   */
  private *markWake(type: WakeType, q: Task[]): Kernel<void> {
    const first = this.waitList[0];
    if (first.kind === 'write') {
      if (type === 'any') {
        first.woken = true;
        q.push(first.task);
      }
      return;
    }
    let adjustment = 0;
    if (type !== 'read-owned') {
      // Grab a reader bias first so that no writer can take the lock while we pick readers.
      adjustment = RWSEM_READER_BIAS;
      const old = yield* this.count.fetchAdd(adjustment);
      if (old & RWSEM_WRITER_LOCKED) {
        // A writer stole it. A reader waiting too long asks for a handoff.
        if (!(old & RWSEM_FLAG_HANDOFF) && (yield* now()) > first.timeout) {
          adjustment -= RWSEM_FLAG_HANDOFF;
          first.handoffSet = true;
        }
        yield* this.count.fetchAdd(-adjustment);
        return;
      }
      yield* this.owner.store({ task: first.task, readerOwned: true });
    }
    const woken: Waiter[] = [];
    for (let i = 0; i < this.waitList.length && woken.length < MAX_READERS_WAKEUP; ) {
      const w = this.waitList[i];
      if (w.kind === 'write') {
        i++;
        continue;
      }
      this.waitList.splice(i, 1);
      woken.push(w);
    }
    adjustment = woken.length * RWSEM_READER_BIAS - adjustment;
    if (this.waitList.length === 0) adjustment -= RWSEM_FLAG_WAITERS;
    if (woken.length > 0 && (yield* this.count.load()) & RWSEM_FLAG_HANDOFF) adjustment -= RWSEM_FLAG_HANDOFF;
    if (adjustment !== 0) yield* this.count.fetchAdd(adjustment);
    for (const w of woken) {
      w.granted = true;
      q.push(w.task);
    }
  }

  /**
   * `rwsem_optimistic_spin()` without the OSQ: while the owner is a writer running on another CPU, spin
   * on the owner word; whenever it changes, try `rwsem_try_write_lock_unqueued()`. Gives up when the lock
   * is reader-owned or the owner sleeps.
   */
  private *optimisticSpin(c: Current): Kernel<boolean> {
    for (let nullTries = 0; nullTries < 8; ) {
      const state = yield* this.spinOnOwner(c);
      if (state === 'reader' || state === 'sleeping') return false;
      if (state === 'null') nullTries++;
      let count = yield* this.count.load();
      while (!(count & (LOCK_MASK | RWSEM_FLAG_HANDOFF))) {
        const old = yield* this.count.cmpxchg(count, count | RWSEM_WRITER_LOCKED);
        if (old === count) return true;
        count = old;
      }
      yield* cpuRelax(`${this.name} (optimistic spin)`);
    }
    return false;
  }

  /** `rwsem_spin_on_owner()`: spins while the same writer owns the lock and runs. */
  private *spinOnOwner(c: Current): Kernel<'null' | 'writer' | 'reader' | 'sleeping'> {
    const first = yield* this.owner.load();
    if (first.readerOwned) return 'reader';
    if (first.task === null) return 'null';
    for (;;) {
      const o = yield* this.owner.load();
      if (o !== first) return o.readerOwned ? 'reader' : o.task === null ? 'null' : 'writer';
      if (o.task === null || o.task.state !== 'runnable' || o.task.cpu === c.cpu) return 'sleeping';
      yield* cpuRelax(`${this.name} (spin on owner)`);
    }
  }
}

/** `wake_up_q()`: wakes the tasks collected under the wait lock, after it was dropped. */
function* wakeUpQ(q: readonly Task[]): Kernel<void> {
  for (const t of q) yield* wakeTask(t);
}
