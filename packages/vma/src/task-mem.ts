import type { Kernel } from '@spf/machine';
import { getMmCounterSum } from './memory/mm-counter.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, type MmStruct } from './mm-struct.js';
import { PAGE_SIZE } from './vm-flags.js';

/** The RSS lines of /proc/PID/status, in kB (what {@link taskMemRss} returns). */
export interface TaskMemRss {
  /** `VmRSS`: RssAnon + RssFile + RssShmem. */
  readonly vmRssKb: number;
  readonly rssAnonKb: number;
  readonly rssFileKb: number;
  readonly rssShmemKb: number;
  /** `VmSwap`. */
  readonly vmSwapKb: number;
}

/**
 * Models the RSS part of `task_mem()` in fs/proc/task_mmu.c, the `VmRSS`, `RssAnon`, `RssFile`, `RssShmem`
 * and `VmSwap` lines of /proc/PID/status. Since Linux 6.16 (commit 82241a83cd15, "mm: fix the inaccurate
 * memory statistics issue for users") they are read with `get_mm_counter_sum()`, the exact sum of the per-CPU
 * counters, instead of `get_mm_counter()`, whose error grows with the number of CPUs. Kernel code: the
 * counters' reads are its cost. Simplified: no hiwater marks, no VmSize/VmData lines.
 */
export function* taskMemRss(mm: MmStruct): Kernel<TaskMemRss> {
  const kb = (pages: number) => (pages * PAGE_SIZE) / 1024;
  const anon = yield* getMmCounterSum(mm, MM_ANONPAGES);
  const file = yield* getMmCounterSum(mm, MM_FILEPAGES);
  const shmem = yield* getMmCounterSum(mm, MM_SHMEMPAGES);
  const swap = yield* getMmCounterSum(mm, MM_SWAPENTS);
  return {
    vmRssKb: kb(anon + file + shmem),
    rssAnonKb: kb(anon),
    rssFileKb: kb(file),
    rssShmemKb: kb(shmem),
    vmSwapKb: kb(swap),
  };
}
