import type { Workload, WorkloadResult } from '../workload.js';
import { type FileFaultParams, runFileFaultLoop } from './file-fault-loop.js';

/** Options of {@link pageFault2}. */
export type PageFault2Params = FileFaultParams;

/**
 * will-it-scale's `page_fault2` (tests/page_fault2.c, "Separate file private mapping page faults"), in its
 * `_threads` and `_processes` forms: every task has its own file of MEMSIZE bytes and loops on
 * mmap(MEMSIZE, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd), a write of 0 to the first byte of every page, and
 * munmap; one iteration per page. Each write fault on a private file mapping is `do_cow_fault()`: the page
 * cache page is found through `filemap_fault()` and copied into a new anonymous page.
 */
export const pageFault2: Workload<PageFault2Params> = {
  name: 'page_fault2',
  models:
    'will-it-scale page_fault2 (threads and processes modes): per task, mmap its 128 MiB file MAP_PRIVATE, write every page (COW of the page-cache page), munmap, repeat',
  simplifies:
    "MEMSIZE is `pages` (not 32,768) and each task runs a fixed number of rounds instead of a timer; the file is written (so the page cache holds it) rather than ftruncate()d sparse, which is will-it-scale's steady state after its first round; files live on @spf/file-backed's disk at /mnt, not /tmp, and are not unlinked",
  run(p): WorkloadResult {
    return runFileFaultLoop({ name: 'page_fault2', share: 'private', access: 'write', cache: 'cached' }, p);
  },
};
