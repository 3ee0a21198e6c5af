import { RwSemaphore } from '@spf/locks';
import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE, type VmArea } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
} from '../workload.js';

/** Locked RMWs on the per-VMA lock's line of `vma` (0 when it has none). */
function vmaLockRmws(vma: VmArea | null): number {
  const lock = vma?.vmLock;
  return lock instanceof RwSemaphore ? lock.line.rmws : 0;
}

/** Options of {@link pft}. */
export interface PftParams extends BaseParams {
  /** Pages each thread faults in (its share of the one region). */
  readonly pagesPerThread: number;
  /**
   * Start every thread's share on a 2 MiB boundary (default true): pft's real shares are many MiB, so its
   * threads meet in a PTE table only at the share boundaries; we fault the first `pagesPerThread` pages of
   * each such share. With false the shares are packed (`pagesPerThread` pages each), so small shares put
   * many threads in one PTE table and its lock.
   */
  readonly alignShares?: boolean;
}

const SHARE_ALIGN = 2 * 1024 * 1024;

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
    "one pass over the region (pft repeats for several iterations and takes the best); each thread's share starts on a 2 MiB boundary and only its first `pagesPerThread` pages are faulted (pft's shares are many MiB; faulting all of them would cost host time without changing the per-fault picture), so threads share a PTE table only as rarely as in pft; the region is mapped MAP_NORESERVE so the unfaulted rest costs no commit charge; threads are pinned one per CPU",
  run(p): WorkloadResult {
    checkInt('pft pagesPerThread', p.pagesPerThread, 1, 1 << 20);
    const n = p.cpus;
    const total = n * p.pagesPerThread;
    const align = p.alignShares ?? true;
    const stride = align
      ? Math.ceil((p.pagesPerThread * PAGE_SIZE) / SHARE_ALIGN) * SHARE_ALIGN
      : p.pagesPerThread * PAGE_SIZE;
    const system = bootFor(p, (total + 24 * n + 8192) * PAGE_SIZE);
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    let base = 0;
    // The region's VMA, kept for its lock's counters (exit_mmap removes it from the tree at the end).
    let region: VmArea | null = null;
    const worker = (i: number) =>
      function* (u: UserContext): Kernel<void> {
        const t0 = yield* u.clock();
        first = Math.min(first, t0);
        const start = base + i * stride;
        for (let k = 0; k < p.pagesPerThread; k++) yield* u.store8(start + k * PAGE_SIZE, 1);
        last = Math.max(last, yield* u.clock());
      };
    system.spawnProcess('pft', function* (u) {
      const m = yield* u.mmap(
        0,
        n * stride + SHARE_ALIGN,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      );
      if (!m.ok) throw new Error(`pft: mmap failed with errno ${m.errno}`);
      // Align the first share to 2 MiB (mmap returns a page-aligned address).
      base = align ? Math.ceil(m.value / SHARE_ALIGN) * SHARE_ALIGN : m.value;
      region = u.process.mm.findVma(base);
      for (let i = 1; i < n; i++) yield* u.spawnThread(worker(i), i);
      yield* worker(0)(u);
    });
    const run = runToEnd(system, 'pft');
    const simNs = last - first;
    const lock = system.processes[0].mm.mmapLock;
    return resultOf(system, total / (simNs / 1e9), 'faults/s', simNs, {
      // Locked RMWs on the mmap_lock's cache line per fault (the rwsem's count and owner share it), mmap included.
      mmapLockRmwsPerFault: lock instanceof RwSemaphore ? lock.line.rmws / total : Number.NaN,
      // Locked RMWs on the cache line of the region's per-VMA lock (used by the per-VMA-lock design only).
      vmaLockRmwsPerFault: vmaLockRmws(region) / total,
      effectsPerFault: run.effects / total,
    });
  },
};
