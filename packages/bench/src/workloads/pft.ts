import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { type BaseParams, bootFor, checkInt, resultOf, runToEnd, type Workload, type WorkloadResult } from '../workload.js';

/** Options of {@link pft}. */
export interface PftParams extends BaseParams {
  /** Pages each thread faults in (its share of the one region). */
  readonly pagesPerThread: number;
}

/**
 * mmtests' `pft` (page fault test, Christoph Lameter's pft.c as mmtests runs it): one large private anonymous
 * region is mapped once; N threads (one per CPU) each write to every page of their contiguous share of it at
 * the same time; the figure is faults per second. Every thread faults in the same VMA, so a speculative
 * design's per-VMA state (Dufour's refcount, the per-VMA lock) is shared by all of them; neighbouring shares
 * meet inside one page table when a share is under 512 pages.
 */
export const pft: Workload<PftParams> = {
  name: 'pft',
  models: 'mmtests pft: threads fault in their share of one large anonymous region; faults per second',
  simplifies:
    'one pass over the region (pft repeats for several iterations and takes the best); the region is sized by pages per thread (pft sizes it in bytes); threads are pinned one per CPU; no per-iteration munmap',
  run(p): WorkloadResult {
    checkInt('pft pagesPerThread', p.pagesPerThread, 1, 1 << 20);
    const n = p.cpus;
    const total = n * p.pagesPerThread;
    const system = bootFor(p, (total + 16 * n + 8192) * PAGE_SIZE);
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    let base = 0;
    const worker = (i: number) =>
      function* (u: UserContext): Kernel<void> {
        const t0 = yield* u.clock();
        first = Math.min(first, t0);
        const start = base + i * p.pagesPerThread * PAGE_SIZE;
        for (let k = 0; k < p.pagesPerThread; k++) yield* u.store8(start + k * PAGE_SIZE, 1);
        last = Math.max(last, yield* u.clock());
      };
    system.spawnProcess('pft', function* (u) {
      const m = yield* u.mmap(0, total * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      if (!m.ok) throw new Error(`pft: mmap failed with errno ${m.errno}`);
      base = m.value;
      for (let i = 1; i < n; i++) yield* u.spawnThread(worker(i), i);
      yield* worker(0)(u);
    });
    runToEnd(system, 'pft');
    const simNs = last - first;
    return resultOf(system, total / (simNs / 1e9), 'faults/s', simNs);
  },
};
