import type { AtomicCell, Kernel } from '@spf/machine';

/*
 * The pluggable read side of a seqcount: `new SeqCount(name, { reader })` routes read_seqcount_begin() and
 * read_seqcount_retry() through `reader`, handing it a SeqcountState (the sequence cell and the name; never
 * the seqcount itself). Every shared-memory access must go through the cell, so that the explorer can
 * interleave other CPUs there. Without a reader the seqcount uses the kernel's own read side.
 */

/** The state of a seqcount_t that a read-side implementation may use. */
export interface SeqcountState {
  /** The sequence number: odd while a writer is inside its write section. */
  readonly sequence: AtomicCell;
  readonly name: string;
}

/** A pluggable read_seqcount_begin / read_seqcount_retry (include/linux/seqlock.h). */
export interface SeqcountReadSide {
  /** Waits until no writer is active and returns the (even) sequence to validate against later. */
  readBegin(s: SeqcountState): Kernel<number>;
  /** True if a writer ran since `start` was read, so the read section must be retried. */
  readRetry(s: SeqcountState, start: number): Kernel<boolean>;
}
