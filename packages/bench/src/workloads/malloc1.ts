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

/** Options of {@link malloc1}. */
export interface Malloc1Params extends BaseParams {
  /** Pages of each allocation (will-it-scale's SIZE is 128 MiB). */
  readonly pages: number;
  /** malloc/free pairs per thread. */
  readonly iterations: number;
  /** Touch the first page of every allocation (glibc writes the chunk header there; default true). */
  readonly touchHeader?: boolean;
}

function* testcase(u: UserContext, p: Malloc1Params, done: (t0: number, t1: number) => void): Kernel<void> {
  const len = p.pages * PAGE_SIZE;
  const t0 = yield* u.clock();
  for (let i = 0; i < p.iterations; i++) {
    const m = yield* u.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!m.ok) throw new Error(`malloc1: mmap failed with errno ${m.errno}`);
    if (p.touchHeader ?? true) yield* u.store8(m.value, 1);
    const un = yield* u.munmap(m.value, len);
    if (!un.ok) throw new Error(`malloc1: munmap failed with errno ${un.errno}`);
  }
  done(t0, yield* u.clock());
}

/**
 * will-it-scale's `malloc1` (tests/malloc1.c), threads mode: every thread loops on `malloc(128 MiB)` and
 * `free()`. A request that large is above glibc's mmap threshold, so each malloc is one mmap of a private
 * anonymous region (plus the write of the chunk header, one fault) and each free one munmap: the test
 * measures how fast mmap_lock's writers get through, iterations per second.
 */
export const malloc1: Workload<Malloc1Params> = {
  name: 'malloc1',
  models:
    'will-it-scale malloc1 (threads mode): malloc(128 MiB) + free in a loop, i.e. mmap + header write + munmap',
  simplifies:
    "glibc's allocator is reduced to what it does for a request above M_MMAP_THRESHOLD (mmap, write the chunk header, munmap); the allocation is `pages` long (the length changes only the VMA size, nothing is touched beyond the header); fixed iteration count instead of a timer",
  run(p): WorkloadResult {
    checkInt('malloc1 pages', p.pages, 1, 1 << 20);
    checkInt('malloc1 iterations', p.iterations, 1, 1 << 20);
    const system = bootFor(p, (p.cpus * 16 + 8192) * PAGE_SIZE);
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    const done = (t0: number, t1: number) => {
      first = Math.min(first, t0);
      last = Math.max(last, t1);
    };
    system.spawnProcess('malloc1_threads', function* (u) {
      for (let i = 1; i < p.cpus; i++) yield* u.spawnThread((t) => testcase(t, p, done), i);
      yield* testcase(u, p, done);
    });
    runToEnd(system, 'malloc1');
    const simNs = last - first;
    return resultOf(system, (p.cpus * p.iterations) / (simNs / 1e9), 'iterations/s', simNs);
  },
};
