import {
  AtomicCell,
  block,
  cpuRelax,
  type Kernel,
  MemoryLine,
  self,
  type Task,
  WaitQueue,
  wake,
} from '@spf/machine';

/**
 * Every lock the mm uses, behind the small interfaces this package needs. All calls from @spf/vma into a
 * locking implementation go through this module, so the implementation can be swapped in one place.
 */

/** A sleeping reader/writer lock over the whole address space (rw_semaphore or a whole-range range lock). */
export interface SleepingRwLock {
  downRead(): Kernel<void>;
  upRead(): Kernel<void>;
  downWrite(): Kernel<void>;
  upWrite(): Kernel<void>;
  downReadTrylock(): Kernel<boolean>;
  downWriteTrylock(): Kernel<boolean>;
  downgradeWrite(): Kernel<void>;
  /** Whether anyone holds it (for assertions and reports). */
  isLocked(): boolean;
}

/** seqcount_t. */
export interface SeqCounter {
  writeBegin(): Kernel<void>;
  writeEnd(): Kernel<void>;
  readBegin(): Kernel<number>;
  readRetry(start: number): Kernel<boolean>;
  /** The current sequence, without an effect (reports only). */
  peek(): number;
}

/** spinlock_t. */
export interface SpinLockLike {
  lock(): Kernel<void>;
  unlock(): Kernel<void>;
  isLocked(): boolean;
}

/** Something RCU frees after a grace period: it is poisoned so later accesses are reported. */
export interface Poisonable {
  poison(reason: string): void;
}

/** The RCU operations the mm uses. */
export interface RcuLike {
  readLock(): Kernel<void>;
  readUnlock(): Kernel<void>;
  /** kfree_rcu(): poisons `obj` once every reader that may hold a reference has left its read section. */
  kfreeRcu(obj: Poisonable, reason: string): Kernel<void>;
  /** kfree_rcu() from code that is not running on a machine CPU (synchronous callers). */
  kfreeRcuNow(obj: Poisonable, reason: string): void;
}

/** Which mmap lock an mm uses (chosen when it is created). */
export type MmapLockKind = 'rwsem' | 'range';

/**
 * A reader/writer semaphore with FIFO-free wake-all semantics, built from machine effects.
 * It stands in for @spf/locks' RwSemaphore until that package lands.
 */
class BasicRwsem implements SleepingRwLock {
  /** >0 readers, -1 writer, 0 free. */
  readonly count: AtomicCell;
  readonly wq: WaitQueue;
  owner: Task | null = null;
  constructor(readonly name: string) {
    this.count = new AtomicCell(0, `${name}.count`);
    this.wq = new WaitQueue(name);
    this.wq.describe = () =>
      this.count.value < 0
        ? `held for write by ${this.owner?.name ?? '?'}`
        : `held by ${this.count.value} readers`;
  }
  *downRead(): Kernel<void> {
    for (;;) {
      if (yield* this.downReadTrylock()) return;
      yield* block(this.wq, () => this.count.value >= 0, `down_read(${this.name})`);
    }
  }
  *downReadTrylock(): Kernel<boolean> {
    const c = yield* this.count.load();
    if (c < 0) return false;
    return (yield* this.count.cmpxchg(c, c + 1)) === c;
  }
  *upRead(): Kernel<void> {
    const n = yield* this.count.addReturn(-1);
    if (n === 0) yield* wake(this.wq, Infinity);
  }
  *downWrite(): Kernel<void> {
    for (;;) {
      if (yield* this.downWriteTrylock()) return;
      yield* block(this.wq, () => this.count.value === 0, `down_write(${this.name})`);
    }
  }
  *downWriteTrylock(): Kernel<boolean> {
    if ((yield* this.count.cmpxchg(0, -1)) !== 0) return false;
    this.owner = (yield* self()).task;
    return true;
  }
  *upWrite(): Kernel<void> {
    this.owner = null;
    yield* this.count.store(0);
    yield* wake(this.wq, Infinity);
  }
  *downgradeWrite(): Kernel<void> {
    this.owner = null;
    yield* this.count.store(1);
    yield* wake(this.wq, Infinity);
  }
  isLocked(): boolean {
    return this.count.value !== 0;
  }
}

class BasicSeqCount implements SeqCounter {
  readonly sequence: AtomicCell;
  constructor(line: MemoryLine | string) {
    this.sequence = new AtomicCell(0, line);
  }
  *writeBegin(): Kernel<void> {
    const s = yield* this.sequence.load();
    yield* this.sequence.store(s + 1);
  }
  *writeEnd(): Kernel<void> {
    const s = yield* this.sequence.load();
    yield* this.sequence.store(s + 1);
  }
  *readBegin(): Kernel<number> {
    for (;;) {
      const s = yield* this.sequence.load();
      if ((s & 1) === 0) return s;
      yield* cpuRelax('read_seqcount_begin');
    }
  }
  *readRetry(start: number): Kernel<boolean> {
    return (yield* this.sequence.load()) !== start;
  }
  peek(): number {
    return this.sequence.value;
  }
}

class BasicSpinLock implements SpinLockLike {
  readonly word: AtomicCell;
  constructor(name: string) {
    this.word = new AtomicCell(0, name);
  }
  *lock(): Kernel<void> {
    for (;;) {
      if ((yield* this.word.cmpxchg(0, 1)) === 0) return;
      while (this.word.value !== 0) {
        yield* cpuRelax('spin_lock');
        yield* this.word.load();
      }
    }
  }
  *unlock(): Kernel<void> {
    yield* this.word.store(0);
  }
  isLocked(): boolean {
    return this.word.value !== 0;
  }
}

/**
 * RCU with the guarantee that matters here: an object passed to kfree_rcu is poisoned only after every read
 * section that was running at that moment has ended. Readers are tracked per task.
 */
class BasicRcu implements RcuLike {
  private readonly readers = new Map<Task | string, number>();
  private pending: { obj: Poisonable; reason: string; waitFor: Set<Task | string> }[] = [];
  readonly line = new MemoryLine('rcu_state');
  *readLock(): Kernel<void> {
    const t = (yield* self()).task;
    this.readers.set(t, (this.readers.get(t) ?? 0) + 1);
  }
  *readUnlock(): Kernel<void> {
    const t = (yield* self()).task;
    const n = (this.readers.get(t) ?? 0) - 1;
    if (n <= 0) {
      this.readers.delete(t);
      for (const p of this.pending) p.waitFor.delete(t);
      this.flush();
    } else this.readers.set(t, n);
  }
  *kfreeRcu(obj: Poisonable, reason: string): Kernel<void> {
    this.kfreeRcuNow(obj, reason);
  }
  kfreeRcuNow(obj: Poisonable, reason: string): void {
    this.pending.push({ obj, reason, waitFor: new Set(this.readers.keys()) });
    this.flush();
  }
  private flush(): void {
    const still: typeof this.pending = [];
    for (const p of this.pending) {
      if (p.waitFor.size === 0) p.obj.poison(p.reason);
      else still.push(p);
    }
    this.pending = still;
  }
}

/** Creates the mmap lock of an mm. */
export function createMmapLock(kind: MmapLockKind, name: string): SleepingRwLock {
  // A range lock taken over the whole address space behaves as a reader/writer lock; the mm only ever
  // takes whole-range locks.
  return new BasicRwsem(kind === 'range' ? `${name}(range)` : name);
}

/** Creates a seqcount whose sequence word lives on `line`. */
export function createSeqCount(line: MemoryLine | string): SeqCounter {
  return new BasicSeqCount(line);
}

/** Creates a spinlock. */
export function createSpinLock(name: string): SpinLockLike {
  return new BasicSpinLock(name);
}

/** Creates an RCU instance (one per simulated system; mms created together should share it). */
export function createRcu(): RcuLike {
  return new BasicRcu();
}
