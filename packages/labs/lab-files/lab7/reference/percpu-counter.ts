// Lab 7: an RSS counter that scales. Linux 6.2's mm->rss_stat[] is an array of percpu_counters
// (lib/percpu_counter.c); this is one of them, written as kernel code for the simulated machine.
import { SpinLock } from '@spf/locks';
import { Cell, type Kernel, preemptDisable, preemptEnable, self } from '@spf/machine';
import type { RssCounter, RssCounterInfo } from '@spf/vma';

/** percpu_counter_batch: max(32, 2 × the number of CPUs), as compute_batch_value() sets it. */
export function percpuCounterBatch(nrCpus: number): number {
  return Math.max(32, 2 * nrCpus);
}

/**
 * One RSS counter of an mm on a machine of `nrCpus` CPUs: struct percpu_counter, a shared count under a
 * spinlock (one cache line: the lock and fbc->count) plus one small counter per CPU, each on its own line.
 */
export function createRssCounter(info: RssCounterInfo, nrCpus: number): RssCounter {
  const batch = percpuCounterBatch(nrCpus);
  const lock = new SpinLock(`${info.name}.lock`);
  // fbc->count shares the lock's cache line, as in struct percpu_counter.
  const count = new Cell(0, lock.line);
  const counters = Array.from({ length: nrCpus }, (_, cpu) => new Cell(0, `${info.name}.counters[${cpu}]`));

  return {
    // percpu_counter_add_batch(): the CPU's own counter takes the update; only when it reaches the batch
    // is it folded into the shared count, under the lock.
    *add(amount: number): Kernel<void> {
      yield* preemptDisable();
      const { cpu } = yield* self();
      const mine = counters[cpu];
      const c = (yield* mine.load()) + amount;
      if (c >= batch || c <= -batch) {
        const flags = yield* lock.lockIrqsave();
        yield* count.store((yield* count.load()) + c);
        yield* mine.store((yield* mine.load()) - (c - amount));
        yield* lock.unlockIrqrestore(flags);
      } else {
        yield* mine.store(c);
      }
      yield* preemptEnable();
    },

    // percpu_counter_read_positive(): the shared count alone, never below 0.
    *read(): Kernel<number> {
      const v = yield* count.load();
      return v < 0 ? 0 : v;
    },

    // __percpu_counter_sum(): under the lock, so that no fold is half done while we add up.
    *sum(): Kernel<number> {
      const flags = yield* lock.lockIrqsave();
      let ret = yield* count.load();
      for (const c of counters) ret += yield* c.load();
      yield* lock.unlockIrqrestore(flags);
      return ret;
    },
  };
}
