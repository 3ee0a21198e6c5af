import { block, type Kernel, kassert, type Task, WaitQueue, wakeTask, writeEffect } from '@spf/machine';
import { type Current, current, describeCurrent, irqsEnabled } from './current.js';
import { IntervalTree, type IntervalNode } from './interval-tree.js';
import { LockError } from './lock-error.js';
import { activeLockdep, type Lockdep, type LockdepMap, resolveLockdep } from './lockdep.js';
import type { SleepingRwLock } from './sleeping-rw-lock.js';
import { SpinLock } from './spinlock.js';

/** Options of {@link RangeLock}. */
export type RangeLockOptions = {
  /** Validator to report to; `false` for none; default {@link defaultLockdep}. */
  readonly lockdep?: Lockdep | false;
  /** Lock class for lockdep (default: the name). */
  readonly lockClass?: string;
};

/** A held or requested range, returned by the lock operations and passed back to {@link RangeLock.unlock}. */
export type RangeLockHandle = {
  readonly start: number;
  readonly end: number;
  readonly kind: 'read' | 'write';
  /** Order of arrival (`range_lock->seqnum`). */
  readonly seqnum: number;
};

type Request = RangeLockHandle & {
  kind: 'read' | 'write';
  /** Conflicting earlier ranges still in the tree (`blocking_ranges`). */
  blocking: number;
  held: boolean;
  released: boolean;
  readonly task: Task | null;
  node: IntervalNode<Request> | null;
};

/** The whole address space, for the {@link SleepingRwLock} methods. */
const FULL_START = 0;
const FULL_END = Number.POSITIVE_INFINITY;

/**
 * A reader/writer range lock in the style of the mmap_sem range-lock proposals: Jan Kara's
 * "lib: Implement range locks" (2013), Davidlohr Bueso's "locking: Introduce range reader/writer lock"
 * (lib/range_lock.c, 2017-18) and Laurent Dufour's "mm: Range lock for mmap_sem" series that converted
 * mmap_sem to it.
 *
 * Every request, held or waiting, sits in an {@link IntervalTree} guarded by a spinlock. A new request
 * counts the conflicting requests already in the tree that overlap it (writers conflict with everything,
 * readers only with writers), inserts itself, and sleeps until that count drops to zero. A release
 * removes the range and decrements the count of every later conflicting request that overlaps it, waking
 * those that reach zero. Because a newcomer also waits for earlier *waiting* requests, overlapping
 * requests are served in arrival order, so no writer starves; disjoint ranges never wait for each other.
 *
 * It also offers the whole-range {@link SleepingRwLock} methods, so it is a drop-in mmap lock: a whole
 * range hold is [0, +inf), remembered per task so `upRead()` finds it.
 *
 * Lockdep sees the lock as held while the task holds any range of it. Checks: unlocking a handle that is
 * not held, or a whole-range release without a hold, stops the run with a {@link LockError}; a conflicting
 * overlap among held ranges (a bug in the lock) fails an assertion.
 */
export class RangeLock implements SleepingRwLock, LockdepMap {
  readonly lockClass: string;
  readonly waitKind = 'sleep' as const;
  readonly waitQueue: WaitQueue;
  /** `range_lock_tree->lock`; the tree's root and sequence number live on its line. */
  private readonly treeLock: SpinLock;
  private readonly tree = new IntervalTree<Request>();
  private seqnum = 0;
  private readonly ld: Lockdep | null;
  private readonly whole = new Map<object, Request[]>();
  private readonly depth = new Map<object, number>();
  /** The owner key of an interrupt on an idle CPU (no task), one per CPU so that lock and unlock agree. */
  private readonly idleKeys = new Map<number, object>();

  constructor(
    readonly name: string,
    opts: RangeLockOptions = {},
  ) {
    this.treeLock = new SpinLock(`${name}.tree_lock`, { lockdep: false });
    this.waitQueue = new WaitQueue(name);
    this.waitQueue.describe = () => this.describeHolders();
    this.ld = resolveLockdep(opts.lockdep);
    this.lockClass = opts.lockClass ?? name;
  }

  /** Held ranges (not waiting ones), in order of start; for assertions. */
  heldRanges(): RangeLockHandle[] {
    return this.tree
      .toArray()
      .map((n) => n.value)
      .filter((r) => r.held);
  }

  /** Requests still waiting. */
  waiting(): number {
    return this.tree.size - this.heldRanges().length;
  }

  isLocked(): boolean {
    return this.heldRanges().length > 0;
  }

  isWriteLocked(): boolean {
    return this.heldRanges().some((r) => r.kind === 'write');
  }

  readers(): number {
    return this.heldRanges().filter((r) => r.kind === 'read').length;
  }

  /** Who holds what, for deadlock reports. */
  describeHolders(): string {
    const held = this.heldRanges();
    if (held.length === 0) return 'nobody';
    return held.map((r) => `${r.kind} [${r.start}, ${r.end})`).join(', ');
  }

  // ---- ranges ----------------------------------------------------------------------------------------

  /** `range_read_lock()`: shared hold of [start, end); sleeps while an overlapping writer is ahead. */
  *readLock(start: number, end: number): Kernel<RangeLockHandle> {
    return yield* this.lockRange(start, end, 'read');
  }

  /** `range_write_lock()`: exclusive hold of [start, end). */
  *writeLock(start: number, end: number): Kernel<RangeLockHandle> {
    return yield* this.lockRange(start, end, 'write');
  }

  /**
   * `range_write_lock()` with a lockdep nesting subclass (as `down_write_nested()`): for a second lock of
   * this class taken while one is held, in an order the caller guarantees.
   */
  *writeLockNested(start: number, end: number, subclass: number): Kernel<RangeLockHandle> {
    return yield* this.lockRange(start, end, 'write', subclass);
  }

  /** `range_read_trylock()`: a read hold only if no conflicting request overlaps; else null. */
  *readTrylock(start: number, end: number): Kernel<RangeLockHandle | null> {
    return yield* this.tryRange(start, end, 'read');
  }

  /** `range_write_trylock()`. */
  *writeTrylock(start: number, end: number): Kernel<RangeLockHandle | null> {
    return yield* this.tryRange(start, end, 'write');
  }

  /** `range_read_unlock()` / `range_write_unlock()`: releases a held range. */
  *unlock(handle: RangeLockHandle): Kernel<void> {
    const c = yield* current();
    const r = handle as Request;
    if (!r.held || r.released || r.node === null) {
      throw new LockError(
        `range unlock of [${handle.start}, ${handle.end}) on '${this.name}' by ${describeCurrent(c)}, but that range is not held (already unlocked, or from another lock)`,
      );
    }
    r.released = true;
    this.lockdepRelease(c);
    const flags = yield* this.treeLock.lockIrqsave();
    yield writeEffect(this.treeLock.line);
    const node = r.node;
    this.tree.remove(node);
    r.node = null;
    r.held = false;
    const wake: Task[] = [];
    this.tree.forEachOverlap(r.start, r.end, (n) => {
      const b = n.value;
      if (b.seqnum > r.seqnum && conflicts(r, b)) {
        b.blocking--;
        if (b.blocking === 0 && b.task) wake.push(b.task);
      }
    });
    yield* this.treeLock.unlockIrqrestore(flags);
    for (const t of wake) yield* wakeTask(t);
  }

  /** `range_downgrade_write()`: turns a held write range into a read range, letting later readers in. */
  *downgrade(handle: RangeLockHandle): Kernel<void> {
    const c = yield* current();
    const r = handle as Request;
    if (!r.held || r.released || r.kind !== 'write') {
      throw new LockError(
        `range downgrade of [${handle.start}, ${handle.end}) on '${this.name}' by ${describeCurrent(c)}, which does not hold it for writing`,
      );
    }
    const flags = yield* this.treeLock.lockIrqsave();
    yield writeEffect(this.treeLock.line);
    r.kind = 'read';
    const wake: Task[] = [];
    this.tree.forEachOverlap(r.start, r.end, (n) => {
      const b = n.value;
      if (b.seqnum > r.seqnum && b.kind === 'read') {
        b.blocking--;
        if (b.blocking === 0 && b.task) wake.push(b.task);
      }
    });
    yield* this.treeLock.unlockIrqrestore(flags);
    for (const t of wake) yield* wakeTask(t);
  }

  // ---- whole range (SleepingRwLock) -------------------------------------------------------------------

  *downRead(): Kernel<void> {
    const h = yield* this.readLock(FULL_START, FULL_END);
    yield* this.rememberWhole(h);
  }

  *upRead(): Kernel<void> {
    yield* this.unlock(yield* this.takeWhole('read', 'up_read'));
  }

  *downWrite(): Kernel<void> {
    const h = yield* this.writeLock(FULL_START, FULL_END);
    yield* this.rememberWhole(h);
  }

  /** `down_write_nested()` over the whole range: what `mmap_write_lock_nested()` takes in `dup_mmap()`. */
  *downWriteNested(subclass: number): Kernel<void> {
    const h = yield* this.writeLockNested(FULL_START, FULL_END, subclass);
    yield* this.rememberWhole(h);
  }

  *upWrite(): Kernel<void> {
    yield* this.unlock(yield* this.takeWhole('write', 'up_write'));
  }

  *downReadTrylock(): Kernel<boolean> {
    const h = yield* this.readTrylock(FULL_START, FULL_END);
    if (h) yield* this.rememberWhole(h);
    return h !== null;
  }

  *downWriteTrylock(): Kernel<boolean> {
    const h = yield* this.writeTrylock(FULL_START, FULL_END);
    if (h) yield* this.rememberWhole(h);
    return h !== null;
  }

  *downgradeWrite(): Kernel<void> {
    const c = yield* current();
    const list = this.whole.get(this.keyOf(c)) ?? [];
    let h: Request | undefined;
    for (const r of list) if (r.kind === 'write') h = r;
    if (!h) {
      throw new LockError(
        `downgrade_write of '${this.name}' by ${describeCurrent(c)}, which does not hold it for writing`,
      );
    }
    yield* this.downgrade(h);
  }

  // ---- internals -------------------------------------------------------------------------------------

  private *lockRange(
    start: number,
    end: number,
    kind: 'read' | 'write',
    subclass?: number,
  ): Kernel<RangeLockHandle> {
    checkRange(this.name, start, end);
    const c = yield* current();
    const ld = activeLockdep(this.ld);
    if (ld) ld.mightSleep(this.name, c, yield* irqsEnabled());
    this.lockdepAcquire(c, kind, false, subclass);
    const flags = yield* this.treeLock.lockIrqsave();
    yield writeEffect(this.treeLock.line);
    const r = this.newRequest(start, end, kind, c);
    this.tree.forEachOverlap(start, end, (n) => {
      if (conflicts(n.value, r)) r.blocking++;
    });
    r.node = this.tree.insert(start, end, r);
    yield* this.treeLock.unlockIrqrestore(flags);
    if (r.blocking > 0)
      yield* block(this.waitQueue, () => r.blocking === 0, `${this.name} [${start}, ${end}) ${kind}`);
    this.entered(r, c);
    return r;
  }

  private *tryRange(start: number, end: number, kind: 'read' | 'write'): Kernel<RangeLockHandle | null> {
    checkRange(this.name, start, end);
    const c = yield* current();
    const flags = yield* this.treeLock.lockIrqsave();
    yield writeEffect(this.treeLock.line);
    const r = this.newRequest(start, end, kind, c);
    this.tree.forEachOverlap(start, end, (n) => {
      if (conflicts(n.value, r)) r.blocking++;
    });
    if (r.blocking === 0) r.node = this.tree.insert(start, end, r);
    yield* this.treeLock.unlockIrqrestore(flags);
    if (r.blocking > 0) return null;
    this.lockdepAcquire(c, kind, true);
    this.entered(r, c);
    return r;
  }

  private newRequest(start: number, end: number, kind: 'read' | 'write', c: Current): Request {
    return {
      start,
      end,
      kind,
      seqnum: this.seqnum++,
      blocking: 0,
      held: false,
      released: false,
      task: c.task,
      node: null,
    };
  }

  private entered(r: Request, c: Current): void {
    r.held = true;
    for (const o of this.tree.overlaps(r.start, r.end)) {
      const h = o.value;
      kassert(
        h === r || !h.held || !conflicts(h, r),
        () =>
          `range lock '${this.name}': ${describeCurrent(c)} got ${r.kind} [${r.start}, ${r.end}) while ${h.kind} [${h.start}, ${h.end}) is held`,
      );
    }
  }

  private lockdepAcquire(c: Current, kind: 'read' | 'write', trylock: boolean, subclass?: number): void {
    const k = this.keyOf(c);
    const d = this.depth.get(k) ?? 0;
    this.depth.set(k, d + 1);
    if (d === 0) activeLockdep(this.ld)?.acquire(this, c, { read: kind === 'read', trylock, subclass });
  }

  private lockdepRelease(c: Current): void {
    const k = this.keyOf(c);
    const d = this.depth.get(k) ?? 0;
    if (d <= 1) this.depth.delete(k);
    else this.depth.set(k, d - 1);
    if (d === 1) activeLockdep(this.ld)?.release(this, c);
  }

  /** Whose holds these are: the task, or for an interrupt on an idle CPU that CPU (the same key every time). */
  private keyOf(c: Current): object {
    if (c.task) return c.task;
    let k = this.idleKeys.get(c.cpu);
    if (!k) {
      k = { cpu: c.cpu };
      this.idleKeys.set(c.cpu, k);
    }
    return k;
  }

  private *rememberWhole(h: RangeLockHandle): Kernel<void> {
    const c = yield* current();
    const k = this.keyOf(c);
    let list = this.whole.get(k);
    if (!list) {
      list = [];
      this.whole.set(k, list);
    }
    list.push(h as Request);
  }

  private *takeWhole(kind: 'read' | 'write', op: string): Kernel<RangeLockHandle> {
    const c = yield* current();
    const list = this.whole.get(this.keyOf(c)) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].kind === kind) return list.splice(i, 1)[0];
    }
    throw new LockError(
      `${op} of '${this.name}' by ${describeCurrent(c)}, which holds no whole-range ${kind} lock of it (${this.describeHolders()})`,
    );
  }
}

function conflicts(a: { kind: string }, b: { kind: string }): boolean {
  return a.kind === 'write' || b.kind === 'write';
}

function checkRange(name: string, start: number, end: number): void {
  if (!(start < end) || Number.isNaN(start) || start < 0) {
    throw new LockError(`range lock '${name}': bad range [${start}, ${end}); need 0 <= start < end`);
  }
}
