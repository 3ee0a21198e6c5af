import type { SeqcountReadSide, SeqcountState } from '@spf/locks';
import { cpuRelax, type Kernel } from '@spf/machine';

// Lab 2 reference solution, part 1: the read side of a seqcount (include/linux/seqlock.h).
//
// A writer makes the sequence odd, changes the data, and makes it even again. A reader samples the
// sequence before reading the data and checks it afterwards: if it changed, a writer ran in between and
// what the reader saw may be torn, so the reader tries again. (On x86 the smp_rmb() the kernel places
// between the sequence and data loads is only a compiler barrier, so it has no effect here.)

export const seqcountReadSide: SeqcountReadSide = {
  /** read_seqcount_begin(): wait until no writer is inside, and return the (even) sequence. */
  *readBegin(s: SeqcountState): Kernel<number> {
    for (;;) {
      const seq = yield* s.sequence.load();
      if ((seq & 1) === 0) return seq;
      yield* cpuRelax(`${s.name}: writer inside`);
    }
  },

  /** read_seqcount_retry(): true if the sequence moved since `start`, so the read must be redone. */
  *readRetry(s: SeqcountState, start: number): Kernel<boolean> {
    const now = yield* s.sequence.load();
    return now !== start;
  },
};
