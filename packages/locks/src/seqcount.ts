import { AtomicCell, cpuRelax, type Kernel, type MemoryLine, writeEffect } from '@spf/machine';
import { smpWmb } from './barriers.js';
import type { SeqcountReadSide, SeqcountState } from './seqcount-read-side.js';
import { LockError } from './lock-error.js';

/** Options of {@link SeqCount}. */
export type SeqCountOptions = {
  /** Replace the read side by a pluggable one (see seqcount-read-side.ts). */
  readonly reader?: SeqcountReadSide;
  /** Put the sequence on this line (a field of a larger struct, like `vma->vm_sequence`). */
  readonly line?: MemoryLine;
};

/**
 * The kernel's read side of a seqcount (include/linux/seqlock.h), the default of every {@link SeqCount}
 * and what its raw_* operations always use (not exported from the package: course code does not get it):
 * `read_seqcount_begin()` spins while the sequence is odd (a writer is inside) and returns it;
 * `read_seqcount_retry()` re-reads it after the read section and says whether it changed. The smp_rmb()
 * between the data loads and the sequence loads is a compiler barrier on x86.
 */
export const seqcountReadSide: SeqcountReadSide = {
  // The loads are AtomicCell.load() inlined (its read effect, then the value), and smp_rmb() is a compiler
  // barrier on x86 with no effect (barriers.ts): the same effects without a generator frame for each.
  *readBegin(s: SeqcountState): Kernel<number> {
    const sequence = s.sequence;
    for (;;) {
      yield sequence.line.readEffect;
      const seq = sequence.value;
      if ((seq & 1) === 0) return seq; // smp_rmb()
      yield* cpuRelax(`${s.name} (read_seqcount_begin)`);
    }
  },
  *readRetry(s: SeqcountState, start: number): Kernel<boolean> {
    // smp_rmb()
    yield s.sequence.line.readEffect;
    return s.sequence.value !== start;
  },
};

/**
 * `seqcount_t` (include/linux/seqlock.h): a sequence number that writers make odd for the duration of a
 * write section, so lock-free readers can detect that they raced with one and retry. Writers must be
 * serialized by the caller (a lock, as in {@link SeqLock}) and should not be preempted inside.
 *
 * The read side is routed through the `reader` option (default {@link seqcountReadSide}). A writer
 * calling `writeEnd` without `writeBegin` stops the run with a {@link LockError}.
 */
export class SeqCount implements SeqcountState {
  readonly sequence: AtomicCell;
  private readonly reader: SeqcountReadSide;
  /** What a pluggable read side is handed: the sequence and the name, never the seqcount itself. */
  private readonly readState: SeqcountState;

  constructor(
    readonly name: string,
    opts: SeqCountOptions = {},
  ) {
    this.sequence = new AtomicCell(0, opts.line ?? name);
    this.reader = opts.reader ?? seqcountReadSide;
    this.readState = Object.freeze({ sequence: this.sequence, name });
  }

  /** The line of the sequence. */
  get line(): MemoryLine {
    return this.sequence.line;
  }

  /** Whether a writer is inside its write section (plain read for assertions). */
  isWriting(): boolean {
    return (this.sequence.value & 1) === 1;
  }

  // The read-side methods return the read side's own kernel code instead of wrapping it in a generator of
  // their own: the same effects, one generator fewer per call (the speculative faults make several).

  /** `read_seqcount_begin()`: waits for an even sequence and returns it. */
  readBegin(): Kernel<number> {
    return this.reader.readBegin(this.readState);
  }

  /** `read_seqcount_retry()`: true if the section that began at `start` must be retried. */
  readRetry(start: number): Kernel<boolean> {
    return this.reader.readRetry(this.readState, start);
  }

  /** `raw_read_seqcount_begin()`: as readBegin without lockdep; always the kernel's semantics. */
  rawReadBegin(): Kernel<number> {
    return seqcountReadSide.readBegin(this);
  }

  /**
   * `raw_read_seqcount()`: reads the sequence without waiting for a writer to finish (the caller checks
   * the low bit itself, as `raw_seqcount_begin()` users and the SPF patches do).
   */
  *rawReadSeqcount(): Kernel<number> {
    yield this.sequence.line.readEffect; // the sequence's load (AtomicCell.load() inlined), then smp_rmb()
    return this.sequence.value;
  }

  /** `read_seqcount_retry()` under its raw name. */
  rawReadRetry(start: number): Kernel<boolean> {
    return seqcountReadSide.readRetry(this, start);
  }

  /** `write_seqcount_begin()`: makes the sequence odd, then smp_wmb() before the data stores. */
  *writeBegin(): Kernel<void> {
    yield* this.rawWriteBegin();
  }

  /** `write_seqcount_end()`: smp_wmb() after the data stores, then makes the sequence even again. */
  *writeEnd(): Kernel<void> {
    yield* this.rawWriteEnd();
  }

  /** `raw_write_seqcount_begin()`: `s->sequence++; smp_wmb();` (a plain increment: writers are serialized). */
  *rawWriteBegin(): Kernel<void> {
    // `s->sequence++` is a non-locked add: one store effect (writers are serialized, so no update is lost).
    yield writeEffect(this.line);
    const seq = this.sequence.value;
    if (seq & 1) {
      throw new LockError(
        `write_seqcount_begin on '${this.name}' while another write section is open (sequence ${seq}); writers must be serialized by a lock`,
      );
    }
    this.sequence.value = seq + 1;
    yield* smpWmb();
  }

  /** `raw_write_seqcount_end()`: `smp_wmb(); s->sequence++;`. */
  *rawWriteEnd(): Kernel<void> {
    yield* smpWmb();
    yield writeEffect(this.line);
    const seq = this.sequence.value;
    if ((seq & 1) === 0) {
      throw new LockError(
        `write_seqcount_end on '${this.name}' without write_seqcount_begin (sequence ${seq} is even)`,
      );
    }
    this.sequence.value = seq + 1;
  }

  /**
   * `raw_write_seqcount_barrier()`: two increments with a barrier between, invalidating in-flight
   * readers without an open write section.
   */
  *rawWriteSeqcountBarrier(): Kernel<void> {
    yield* this.rawWriteBegin();
    yield* this.rawWriteEnd();
  }
}
