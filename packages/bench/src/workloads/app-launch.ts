import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
} from '../workload.js';

/** Options of {@link appLaunch}. */
export interface AppLaunchParams extends BaseParams {
  /** Threads the application creates (about 100 for a large app starting up). */
  readonly threads: number;
  /** Pages of each thread stack (glibc's default is 8 MiB; only the touched pages cost anything). */
  readonly stackPages: number;
  /** Pages each new thread faults in (its stack top and its share of a heap). */
  readonly touchPages: number;
  /** Pages of a faulted-in region one more thread unmaps while the threads start (0 = none). */
  readonly bigMunmapPages: number;
}

/**
 * An application launch: the main thread creates `threads` threads the way glibc's `pthread_create()`
 * does (mmap of the stack, mprotect of its guard page, clone), and every new thread at once faults in
 * pages of its stack and heap while the main thread keeps creating threads. The stack mmaps and mprotects
 * take mmap_lock for writing, the faults for reading (classic), so the launch is the mix where writers and
 * readers of one mm meet. With `bigMunmapPages`, one more thread unmaps a large faulted region meanwhile
 * (question 6: the stack mmaps, far from that range, still wait behind it under the rwsem). Figures: launch
 * time (score: simulated ms until the last thread finished its faults), the mean and worst latency of the
 * stack mmaps, and fault throughput.
 */
export const appLaunch: Workload<AppLaunchParams> = {
  name: 'app_launch',
  models:
    'an application start-up: ~100 pthread_create()s (stack mmap + guard mprotect) while the started threads fault',
  simplifies:
    'no clone() cost beyond the simulator thread start; new threads are placed round-robin on the CPUs after the main thread (CPU 0 runs only the main thread); no TLS set-up, no futexes; the heap is one region mapped before the launch',
  run(p): WorkloadResult {
    checkInt('app_launch threads', p.threads, 1, 4096);
    checkInt('app_launch stackPages', p.stackPages, 2, 1 << 16);
    checkInt('app_launch touchPages', p.touchPages, 0, p.stackPages - 1);
    checkInt('app_launch bigMunmapPages', p.bigMunmapPages, 0, 1 << 20);
    if (p.cpus < 2) throw new RangeError('app_launch needs at least 2 CPUs (the main thread has CPU 0)');
    const workers = p.cpus - 1 - (p.bigMunmapPages > 0 ? 1 : 0);
    if (workers < 1) throw new RangeError('app_launch with bigMunmapPages needs at least 3 CPUs');
    const system = bootFor(p, (p.threads * (p.touchPages * 2 + 16) + p.bigMunmapPages + 8192) * PAGE_SIZE);
    const latencies: number[] = [];
    let start = 0;
    let end = 0;
    let heap = 0;
    const worker = (i: number, stack: number) =>
      function* (t: UserContext): Kernel<void> {
        for (let k = 0; k < p.touchPages; k++) {
          yield* t.store8(stack + (p.stackPages - 1 - k) * PAGE_SIZE, 1);
          yield* t.store8(heap + (i * p.touchPages + k) * PAGE_SIZE, 1);
        }
        end = Math.max(end, yield* t.clock());
      };
    system.spawnProcess('app', function* (u) {
      const h = yield* u.mmap(
        0,
        p.threads * p.touchPages * PAGE_SIZE + PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
      );
      if (!h.ok) throw new Error(`app_launch: heap mmap failed with errno ${h.errno}`);
      heap = h.value;
      let big = 0;
      if (p.bigMunmapPages > 0) {
        const b = yield* u.mmap(
          0,
          p.bigMunmapPages * PAGE_SIZE,
          PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS,
        );
        if (!b.ok) throw new Error(`app_launch: mmap failed with errno ${b.errno}`);
        big = b.value;
        for (let k = 0; k < p.bigMunmapPages; k++) yield* u.store8(big + k * PAGE_SIZE, 1);
      }
      start = yield* u.clock();
      if (p.bigMunmapPages > 0) {
        yield* u.spawnThread(function* (t) {
          const r = yield* t.munmap(big, p.bigMunmapPages * PAGE_SIZE);
          if (!r.ok) throw new Error(`app_launch: big munmap failed with errno ${r.errno}`);
        }, p.cpus - 1);
      }
      for (let i = 0; i < p.threads; i++) {
        const t0 = yield* u.clock();
        const s = yield* u.mmap(
          0,
          p.stackPages * PAGE_SIZE,
          PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS,
        );
        if (!s.ok) throw new Error(`app_launch: stack mmap failed with errno ${s.errno}`);
        const g = yield* u.mprotect(s.value, PAGE_SIZE, PROT_NONE);
        if (!g.ok) throw new Error(`app_launch: guard mprotect failed with errno ${g.errno}`);
        latencies.push((yield* u.clock()) - t0);
        yield* u.spawnThread(worker(i, s.value), 1 + (i % workers));
      }
      end = Math.max(end, yield* u.clock());
    });
    runToEnd(system, 'app_launch');
    const simNs = end - start;
    const sorted = [...latencies].sort((a, b) => a - b);
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    return resultOf(system, simNs / 1e6, 'ms launch', simNs, {
      stackMmapMeanUs: mean / 1e3,
      stackMmapMaxUs: sorted[sorted.length - 1] / 1e3,
      faultsPerSec: (p.threads * p.touchPages * 2) / (simNs / 1e9),
    });
  },
};
