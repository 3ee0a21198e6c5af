import type { Workload, WorkloadResult } from '../workload.js';
import { type FileFaultParams, runFileFaultLoop } from './file-fault-loop.js';

/** Options of {@link pageFault3}. */
export type PageFault3Params = FileFaultParams;

/**
 * will-it-scale's `page_fault3` (tests/page_fault3.c, "Separate file shared mapping page fault"), in its
 * `_threads` and `_processes` forms: as page_fault2 but MAP_SHARED. Each write fault is `do_shared_fault()`:
 * `filemap_fault()` finds the page-cache page, `page_mkwrite` (`filemap_page_mkwrite()`) locks it and marks it
 * dirty, and the PTE maps the page-cache page itself, writable and dirty (dirty tracking).
 */
export const pageFault3: Workload<PageFault3Params> = {
  name: 'page_fault3',
  models:
    'will-it-scale page_fault3 (threads and processes modes): per task, mmap its 128 MiB file MAP_SHARED, write every page (page_mkwrite + dirty tracking), munmap, repeat',
  simplifies:
    'as page_fault2: `pages` instead of 32,768, fixed rounds, the file written rather than sparse, on /mnt and not unlinked; no writeback runs during the window (the dirty pages stay dirty)',
  run(p): WorkloadResult {
    return runFileFaultLoop({ name: 'page_fault3', share: 'shared', access: 'write', cache: 'cached' }, p);
  },
};
