import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
} from '../workload.js';

/** Options of {@link sparseTouch}. */
export interface SparseTouchParams extends BaseParams {
  /** 2 MiB slots each thread touches once (each first touch needs a new PTE table). */
  readonly slotsPerThread: number;
}

const SLOT = 2 * 1024 * 1024;

/**
 * A sparse first-touch workload for question 3: one large private anonymous region, and N threads that each
 * write one page in every 2 MiB slot of their share, so nearly every fault finds no PTE table (and every
 * 512th slot no PMD table) and must allocate one. Designs that never allocate page tables speculatively
 * (SPF v12, Lespinasse's default) fall back to mmap_lock for all of these faults. Faults per second.
 */
export const sparseTouch: Workload<SparseTouchParams> = {
  name: 'sparse_touch',
  models:
    'a sparse first-touch pattern (one page per 2 MiB): a large sparse heap or a hash table of huge stride; no real benchmark of that name, built for question 3',
  simplifies:
    'one write per slot, one pass, threads pinned one per CPU; no THP (slots are exactly one PTE table)',
  run(p): WorkloadResult {
    checkInt('sparse_touch slotsPerThread', p.slotsPerThread, 1, 1 << 16);
    const n = p.cpus;
    const slots = n * p.slotsPerThread;
    // Each touched slot costs its data page and its PTE table.
    const system = bootFor(p, (slots * 3 + 8192) * PAGE_SIZE);
    let base = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    const worker = (i: number) =>
      function* (u: UserContext): Kernel<void> {
        first = Math.min(first, yield* u.clock());
        for (let k = 0; k < p.slotsPerThread; k++) {
          yield* u.store8(base + (i * p.slotsPerThread + k) * SLOT + 64, 1);
        }
        last = Math.max(last, yield* u.clock());
      };
    system.spawnProcess('sparse', function* (u) {
      const m = yield* u.mmap(
        0,
        slots * SLOT,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      );
      if (!m.ok) throw new Error(`sparse_touch: mmap failed with errno ${m.errno}`);
      base = m.value;
      // First touch by the main thread so the VMA has its anon_vma before the measured faults.
      yield* u.store8(base + slots * SLOT - PAGE_SIZE, 1);
      for (let i = 1; i < n; i++) yield* u.spawnThread(worker(i), i);
      yield* worker(0)(u);
    });
    runToEnd(system, 'sparse_touch');
    const simNs = last - first;
    return resultOf(system, slots / (simNs / 1e9), 'faults/s', simNs);
  },
};
