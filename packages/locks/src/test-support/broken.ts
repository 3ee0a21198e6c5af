import { block, Cell, cpuRelax, type Kernel, MemoryLine, read, rmw, self, write } from '@spf/machine';
import type { RwsemPaths } from '../rwsem-paths.js';
import type { SeqcountReadSide } from '../seqcount-read-side.js';
import { seqcountReadSide } from '../seqcount.js';
import { fifoRwsemPaths } from './fifo-rwsem-paths.js';

/** Broken: a seqcount reader that never retries (read_seqcount_retry always says "fine"). */
export const noRetrySeqcountReader: SeqcountReadSide = {
  readBegin: seqcountReadSide.readBegin,
  *readRetry() {
    return false;
  },
};

/** Broken: up_read drops the reader but never hands the lock to (or wakes) a waiting writer. */
export const forgetfulUpReadPaths: RwsemPaths = {
  ...fifoRwsemPaths,
  *upRead(sem) {
    yield* rmw(sem.count.line);
    sem.count.value--;
  },
};

/** Broken: a test-and-set lock built from a plain read and a plain write (no atomic RMW). */
export class PlainTestAndSetLock {
  readonly word: Cell<boolean>;
  constructor(name: string) {
    this.word = new Cell(false, new MemoryLine(name));
  }
  *lock(): Kernel<void> {
    for (;;) {
      yield* read(this.word.line);
      if (!this.word.value) {
        yield* write(this.word.line);
        this.word.value = true;
        return;
      }
      yield* cpuRelax('tas');
    }
  }
  *unlock(): Kernel<void> {
    yield* this.word.store(false);
  }
}

/** Broken (for the fairness test): readers never queue behind a waiting writer, so readers can starve it. */
export const readerPreferencePaths: RwsemPaths = {
  ...fifoRwsemPaths,
  *downRead(sem) {
    const { task } = yield* self();
    yield* rmw(sem.count.line);
    if (sem.count.value >= 0) {
      sem.count.value++;
      return;
    }
    const w = { kind: 'read' as const, granted: false, task };
    sem.waiters.push(w);
    yield* block(sem.waitQueue, () => w.granted);
  },
};
