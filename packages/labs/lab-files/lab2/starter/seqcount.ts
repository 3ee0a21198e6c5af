import type { SeqcountReadSide, SeqcountState } from '@spf/locks';
import { cpuRelax, type Kernel } from '@spf/machine';

// Lab 2, part 1: the read side of a seqcount (include/linux/seqlock.h).
//
// A writer makes s.sequence odd, changes the data, and makes it even again. A reader calls readBegin(),
// reads the data, then readRetry(start); if that says true, it reads again.
//
// Rules of the simulated machine: every access to shared memory is a `yield*` (here
// `yield* s.sequence.load()`), code between two yields runs atomically, and a spin-wait iteration is
// `yield* cpuRelax(label)`. Tests run your code on several CPUs under an explorer that tries many
// interleavings.

export const seqcountReadSide: SeqcountReadSide = {
  /** read_seqcount_begin(): return a sequence number to validate the read section against later. */
  *readBegin(s: SeqcountState): Kernel<number> {
    // TODO: a writer may be inside right now. What must the reader do then?
    void cpuRelax;
    return yield* s.sequence.load();
  },

  /** read_seqcount_retry(): true if the read section that began at `start` must be redone. */
  *readRetry(s: SeqcountState, start: number): Kernel<boolean> {
    // TODO
    void s;
    void start;
    return false;
  },
};
