import { delay, type Kernel } from '@spf/machine';
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

/** Options of {@link kernbench}. */
export interface KernbenchParams extends BaseParams {
  /** Compiler processes in all (`make -j` jobs over the whole build). */
  readonly jobs: number;
  /** Pages each compiler process faults in (heap and stack). */
  readonly pagesPerJob: number;
  /** Simulated user time of one compile, in nanoseconds (work between faults, spread over its pages). */
  readonly userNsPerJob: number;
}

/**
 * A kernbench-like mix (kernbench times `make -j` of a kernel tree): a `make` process forks short-lived,
 * single-threaded compiler processes, up to one per CPU at a time. Each child maps its heap, writes its
 * pages (first-touch faults, with user work between them), reads a few pages it inherited from make
 * (shared, then one copy-on-write write), unmaps and exits; make waits for each and starts the next. Every
 * mm has one user, so Dufour's `mm_users == 1` shortcut (patch 22) skips the speculative path for all of
 * them: this is question 5's workload. Figures: elapsed simulated time (the score, seconds; lower is
 * better), and system time: the children's CPU time minus their user work.
 */
export const kernbench: Workload<KernbenchParams> = {
  name: 'kernbench',
  models:
    'kernbench (make -j of a kernel tree): many short single-threaded processes that fork, map, fault, exit',
  simplifies:
    'a compiler is a process that writes `pagesPerJob` fresh pages with a fixed slice of user time between them and touches 4 pages inherited from make (one COW write); no files, exec, page cache or scheduler load balancing; each job runs on the CPU make picked for it round-robin',
  run(p): WorkloadResult {
    checkInt('kernbench jobs', p.jobs, 1, 1 << 16);
    checkInt('kernbench pagesPerJob', p.pagesPerJob, 1, 1 << 16);
    checkInt('kernbench userNsPerJob', p.userNsPerJob, 0, 1e12);
    const n = p.cpus;
    const system = bootFor(p, ((n + 1) * (p.pagesPerJob + 64) + 8192) * PAGE_SIZE);
    const userSlice = Math.floor(p.userNsPerJob / p.pagesPerJob);
    let start = 0;
    let end = 0;
    let cpuNs = 0;
    let shared = 0;
    const compiler = function* (c: UserContext): Kernel<void> {
      const t0 = yield* c.clock();
      const heap = yield* c.mmap(
        0,
        p.pagesPerJob * PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
      );
      if (!heap.ok) throw new Error(`kernbench: mmap failed with errno ${heap.errno}`);
      for (let k = 0; k < p.pagesPerJob; k++) {
        if (userSlice > 0) yield* delay(userSlice, 'user work');
        yield* c.store8(heap.value + k * PAGE_SIZE, k & 0xff);
      }
      for (let k = 0; k < 4; k++) yield* c.load8(shared + k * PAGE_SIZE);
      yield* c.store8(shared, 1);
      const un = yield* c.munmap(heap.value, p.pagesPerJob * PAGE_SIZE);
      if (!un.ok) throw new Error(`kernbench: munmap failed with errno ${un.errno}`);
      cpuNs += (yield* c.clock()) - t0;
    };
    system.spawnProcess('make', function* (u) {
      const m = yield* u.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      if (!m.ok) throw new Error(`kernbench: mmap failed with errno ${m.errno}`);
      shared = m.value;
      for (let k = 0; k < 4; k++) yield* u.store8(shared + k * PAGE_SIZE, 7);
      start = yield* u.clock();
      const running: number[] = [];
      for (let j = 0; j < p.jobs; j++) {
        if (running.length === n) {
          const w = yield* u.wait(running.shift() as number);
          if (!w.ok) throw new Error(`kernbench: wait failed with errno ${w.errno}`);
        }
        const pid = yield* u.fork(compiler, j % n);
        if (!pid.ok) throw new Error(`kernbench: fork failed with errno ${pid.errno}`);
        running.push(pid.value);
      }
      for (const pid of running) yield* u.wait(pid);
      end = yield* u.clock();
    });
    runToEnd(system, 'kernbench');
    const simNs = end - start;
    const userNs = p.jobs * userSlice * p.pagesPerJob;
    return resultOf(system, simNs / 1e9, 's elapsed', simNs, {
      systemSeconds: (cpuNs - userNs) / 1e9,
      userSeconds: userNs / 1e9,
    });
  },
};
