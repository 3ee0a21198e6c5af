import { type Workload, WorkloadConfigError, type WorkloadResult } from '../workload.js';
import { type FileFaultParams, runFileFaultLoop } from './file-fault-loop.js';

/** Options of {@link pageFault4}. */
export interface PageFault4Params extends FileFaultParams {
  /**
   * `cached` (will-it-scale's test): the file stays in the page cache, so every fault is minor and maps up to
   * fault_around_bytes (16 pages) at once; `uncached`: each task evicts its file before every round
   * (posix_fadvise DONTNEED), so the faults read it from the device (major faults, readahead).
   */
  readonly cache: 'cached' | 'uncached';
}

/**
 * The read-fault workload: will-it-scale's `page_fault4` (tests/page_fault4.c, "Separate file private mapping
 * page read fault"), in its `_threads` and `_processes` forms: every task loops on mmap(MEMSIZE,
 * PROT_READ|PROT_WRITE, MAP_PRIVATE, fd), a read of the first byte of every page, and munmap; one iteration
 * per page. Each read fault is `do_read_fault()`: fault-around (`filemap_map_pages()`) first, then
 * `filemap_fault()`. The `uncached` variant is ours (not in will-it-scale): the same loop on a file evicted
 * before every round.
 */
export const pageFault4: Workload<PageFault4Params> = {
  name: 'page_fault4',
  models:
    'will-it-scale page_fault4 (threads and processes modes): per task, mmap its 128 MiB file MAP_PRIVATE, read every page, munmap, repeat; cached (will-it-scale) or uncached (evicted before every round)',
  simplifies:
    'as page_fault2: `pages` instead of 32,768, fixed rounds, the file written rather than sparse, on /mnt and not unlinked; `uncached` is our variant (posix_fadvise DONTNEED before every round) for faults that wait for the device',
  run(p): WorkloadResult {
    if (p.cache !== 'cached' && p.cache !== 'uncached') {
      throw new WorkloadConfigError(
        `page_fault4 cache must be cached or uncached, got ${JSON.stringify(p.cache)}`,
      );
    }
    return runFileFaultLoop({ name: 'page_fault4', share: 'private', access: 'read', cache: p.cache }, p);
  },
};
