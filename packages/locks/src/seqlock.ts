import type { Kernel } from '@spf/machine';
import type { Lockdep } from './lockdep.js';
import { SeqCount } from './seqcount.js';
import { SpinLock } from './spinlock.js';

/** Options of {@link SeqLock}. */
export type SeqLockOptions = {
  /** Validator for the writers' spinlock; `false` for none; default {@link defaultLockdep}. */
  readonly lockdep?: Lockdep | false;
};

/**
 * `seqlock_t` (include/linux/seqlock.h): a {@link SeqCount} whose writers are serialized by a
 * {@link SpinLock}. Readers never write shared memory; they retry when a writer ran meanwhile.
 * The sequence and the spinlock share one cache line, as in the kernel's struct.
 */
export class SeqLock {
  readonly lock: SpinLock;
  readonly seqcount: SeqCount;

  constructor(
    readonly name: string,
    opts: SeqLockOptions = {},
  ) {
    this.lock = new SpinLock(`${name}.lock`, { lockdep: opts.lockdep });
    this.seqcount = new SeqCount(name, { line: this.lock.line });
  }

  /** `write_seqlock()`: takes the spinlock, then opens the write section. */
  *writeSeqlock(): Kernel<void> {
    yield* this.lock.lock();
    yield* this.seqcount.writeBegin();
  }

  /** `write_sequnlock()`: closes the write section, then drops the spinlock. */
  *writeSequnlock(): Kernel<void> {
    yield* this.seqcount.writeEnd();
    yield* this.lock.unlock();
  }

  /** `write_seqlock_irqsave()`. */
  *writeSeqlockIrqsave(): Kernel<boolean> {
    const flags = yield* this.lock.lockIrqsave();
    yield* this.seqcount.writeBegin();
    return flags;
  }

  /** `write_sequnlock_irqrestore()`. */
  *writeSequnlockIrqrestore(flags: boolean): Kernel<void> {
    yield* this.seqcount.writeEnd();
    yield* this.lock.unlockIrqrestore(flags);
  }

  /** `read_seqbegin()`. */
  *readSeqbegin(): Kernel<number> {
    return yield* this.seqcount.readBegin();
  }

  /** `read_seqretry()`. */
  *readSeqretry(start: number): Kernel<boolean> {
    return yield* this.seqcount.readRetry(start);
  }
}
