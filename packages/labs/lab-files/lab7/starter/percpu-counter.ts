// Lab 7: an RSS counter that scales. Every page fault adds 1 to one of its mm's RSS counters
// (add_mm_counter(mm, MM_ANONPAGES, 1)); munmap and exit subtract. This starter is the counter of old
// kernels: one atomic_long_t per counter, shared by every CPU. Write its readers first, then make it scale.
import { AtomicCell, type Kernel } from '@spf/machine';
import type { RssCounter, RssCounterInfo } from '@spf/vma';

/**
 * One RSS counter of an mm on a machine of `nrCpus` CPUs. The kernel makes four per mm (MM_FILEPAGES,
 * MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES) and calls them from faults and syscalls on every CPU.
 */
export function createRssCounter(info: RssCounterInfo, nrCpus: number): RssCounter {
  void nrCpus;
  // One line that every CPU's faults write with a locked read-modify-write (atomic_long_add).
  const count = new AtomicCell(0, info.name);

  return {
    // add_mm_counter(): called on the CPU of the task that maps or unmaps pages.
    *add(amount: number): Kernel<void> {
      yield* count.addReturn(amount);
    },

    // get_mm_counter(): the cheap read. It may lag behind, but never below 0. TODO
    *read(): Kernel<number> {
      return 0;
    },

    // percpu_counter_sum(): the exact value (/proc/PID/status, and check_mm() at exit wants 0). TODO
    *sum(): Kernel<number> {
      return 0;
    },
  };
}
