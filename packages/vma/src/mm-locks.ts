import {
  RangeLock,
  Rcu,
  RwSemaphore,
  SeqCount,
  SINGLE_DEPTH_NESTING,
  type SleepingRwLock,
  SpinLock,
} from '@spf/locks';
import type { Kernel, MemoryLine } from '@spf/machine';

/**
 * Every lock the mm uses, created here from @spf/locks, behind the small interfaces this package needs,
 * so that all calls from @spf/vma into a locking implementation go through one module.
 */
export type { SleepingRwLock };

/** seqcount_t as the VMA and mm sequence counts use it. */
export interface SeqCounter {
  writeBegin(): Kernel<void>;
  writeEnd(): Kernel<void>;
  readBegin(): Kernel<number>;
  readRetry(start: number): Kernel<boolean>;
  /** raw_read_seqcount(): the sequence without waiting for an active writer (the caller checks bit 0). */
  rawReadSeqcount(): Kernel<number>;
  /** The current sequence without an effect (assertions and reports only). */
  peek(): number;
  readonly line: MemoryLine;
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

/** The RCU operations the mm uses (implemented by @spf/locks' Rcu). */
export interface RcuLike {
  readLock(): Kernel<void>;
  readUnlock(): Kernel<void>;
  /** call_rcu(): runs `cb` (which may be kernel code) after a grace period. */
  callRcu(cb: () => void | Kernel<void>): Kernel<void>;
  /** kfree_rcu(): poisons `obj` after a grace period. */
  kfreeRcu(obj: Poisonable, label?: string): Kernel<void>;
  /** synchronize_rcu(). */
  synchronize(): Kernel<void>;
}

/** Which mmap lock an mm uses (chosen when it is created). */
export type MmapLockKind = 'rwsem' | 'range';

/** Creates the mmap lock of an mm: an rw_semaphore, or a range lock used over the whole address space. */
export function createMmapLock(kind: MmapLockKind, name: string): SleepingRwLock {
  return kind === 'range'
    ? new RangeLock(name, { lockClass: 'mm->mmap_lock' })
    : new RwSemaphore(name, { lockClass: 'mm->mmap_lock' });
}

/** Creates a per-VMA lock (struct vma_lock's rw_semaphore). */
export function createVmaLock(name: string): RwSemaphore {
  return new RwSemaphore(name, { lockClass: 'vma->vm_lock' });
}

/**
 * Takes the mmap lock of a second mm for writing while the first is held (mmap_write_lock_nested with
 * SINGLE_DEPTH_NESTING in dup_mmap), so lockdep does not mistake it for recursive locking.
 */
export function* downWriteNested(lock: SleepingRwLock): Kernel<void> {
  yield* lock.downWriteNested(SINGLE_DEPTH_NESTING);
}

class VmaSeqCount extends SeqCount implements SeqCounter {
  peek(): number {
    return this.sequence.value;
  }
}

/** Creates a seqcount named `name` (on its own line unless `line` is given). */
export function createSeqCount(name: string, line?: MemoryLine): SeqCounter {
  return new VmaSeqCount(name, line ? { line } : {});
}

/** Creates a spinlock. */
export function createSpinLock(name: string, lockClass?: string): SpinLockLike {
  return new SpinLock(name, { lockClass: lockClass ?? name });
}

/**
 * Creates an RCU for synchronous use (runSync, one CPU): callbacks run at the next synchronize(). On a
 * Machine, pass `new Rcu(machine)` from @spf/locks in {@link MmConfig.rcu} instead.
 */
export function createRcu(): RcuLike {
  return new Rcu(1);
}
