import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
} from '../workload.js';

/** Options of {@link pageFault1}. */
export interface PageFault1Params extends BaseParams {
  /** `threads`: one process, one thread per CPU; `processes`: one single-threaded process per CPU. */
  readonly mode: 'threads' | 'processes';
  /** Pages of each mapping (will-it-scale's MEMSIZE is 128 MiB = 32,768 pages). */
  readonly pages: number;
  /** mmap / write every page / munmap rounds per task (will-it-scale loops until its timer stops it). */
  readonly rounds: number;
}

/** One will-it-scale task: `rounds` times mmap, write one byte to every page, munmap. */
function* testcase(
  u: UserContext,
  p: PageFault1Params,
  done: (t0: number, t1: number) => void,
): Kernel<void> {
  const len = p.pages * PAGE_SIZE;
  const t0 = yield* u.clock();
  for (let r = 0; r < p.rounds; r++) {
    const m = yield* u.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!m.ok) throw new Error(`page_fault1: mmap failed with errno ${m.errno}`);
    for (let i = 0; i < p.pages; i++) yield* u.store8(m.value + i * PAGE_SIZE, 0);
    const un = yield* u.munmap(m.value, len);
    if (!un.ok) throw new Error(`page_fault1: munmap failed with errno ${un.errno}`);
  }
  done(t0, yield* u.clock());
}

/**
 * will-it-scale's `page_fault1` (tests/page_fault1.c), in its `_threads` and `_processes` forms: every task
 * loops on mmap(MEMSIZE, PRIVATE|ANONYMOUS), a write of 0 to the first byte of every page, and munmap, and
 * counts one iteration per page. Ours runs a fixed number of rounds per task instead of until a timer fires,
 * and reports iterations (faults) per simulated second over the window from the first task's start to the
 * last task's end.
 */
export const pageFault1: Workload<PageFault1Params> = {
  name: 'page_fault1',
  models:
    'will-it-scale page_fault1 (threads and processes modes): mmap 128 MiB private anonymous, write every page, munmap, repeat',
  simplifies:
    'MEMSIZE is `pages` (64-256 in our profiles, not 32,768) and each task runs a fixed number of rounds rather than for a timed interval; one task per simulated CPU, pinned; the write stores 0 so page contents stay lazily zero on the host',
  run(p): WorkloadResult {
    checkInt('page_fault1 pages', p.pages, 1, 1 << 20);
    checkInt('page_fault1 rounds', p.rounds, 1, 1 << 20);
    const tasks = p.cpus;
    const system = bootFor(p, (tasks * (p.pages + 16) + 8192) * PAGE_SIZE);
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    const done = (t0: number, t1: number) => {
      first = Math.min(first, t0);
      last = Math.max(last, t1);
    };
    if (p.mode === 'threads') {
      system.spawnProcess('page_fault1_threads', function* (u) {
        for (let i = 1; i < tasks; i++) yield* u.spawnThread((t) => testcase(t, p, done), i);
        yield* testcase(u, p, done);
      });
    } else {
      for (let i = 0; i < tasks; i++) {
        system.spawnProcess(`page_fault1_processes.${i}`, (u) => testcase(u, p, done), { cpu: i });
      }
    }
    runToEnd(system, 'page_fault1');
    const iterations = tasks * p.rounds * p.pages;
    const simNs = last - first;
    return resultOf(system, iterations / (simNs / 1e9), 'faults/s', simNs);
  },
};
