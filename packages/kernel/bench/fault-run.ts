/**
 * The simulated workload that `bench/faults.ts` and `bench/host-fault-rate.ts` time: one process on one
 * simulated CPU under the timed policy maps `pages` pages of private anonymous memory and stores one byte to
 * each, so every store is a first-touch anonymous 4 KiB write fault (#PF entry, mmap_lock, page-table walk,
 * page allocation and clearing, PTE install, retry of the store). The same loop as bench/host-fault-rate.c.
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { boot } from '../src/index.js';

/** What {@link faultRun} measured. */
export type FaultRun = {
  /** Host ms of the whole run: boot, mmap, the faulting loop, exit. */
  readonly hostMs: number;
  /** Host ms of the faulting loop alone (what bench/host-fault-rate.c times on the host kernel). */
  readonly loopMs: number;
  /** Host CPU ms (user + system) of this process during the faulting loop alone. */
  readonly loopCpuMs: number;
  readonly faults: number;
  /** Simulated ns of the whole run. */
  readonly simNs: number;
  /** Host bytes per resident simulated page (heap + array buffers; meaningful when node runs with --expose-gc). */
  readonly bytesPerPage: number;
  /**
   * Host CPU ns per fault of the cheapest run of `chunk` consecutive faults in the loop (the loop's own
   * figure when `chunk` is not given): a best-of-N that the host's other jobs distort less, like the C
   * program's best of its passes. A chunk of a thousand faults or more still pays the host GC's young-generation
   * collections, which run every few hundred faults.
   */
  readonly bestChunkCpuNs: number;
};

const gc = (globalThis as { gc?: () => void }).gc;

function usedBytes(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Faults `pages` fresh pages in with stores of `value` (0 leaves the contents lazily zero) and times it;
 * with `chunk`, also times each run of `chunk` consecutive faults (see {@link FaultRun.bestChunkCpuNs}).
 */
export function faultRun(pages: number, value: number, chunk?: number): FaultRun {
  if (chunk !== undefined && !(Number.isInteger(chunk) && chunk >= 1 && chunk <= pages)) {
    throw new RangeError(
      `faultRun: chunk ${chunk} must be a whole number of faults from 1 to pages (${pages})`,
    );
  }
  const system = boot({ cpus: 1, memory: (pages + 8192) * 4096, checkInvariants: false });
  let faults = 0;
  let before = 0;
  let after = 0;
  let loopMs = 0;
  let loopCpuMs = 0;
  let bestChunkCpuNs = Number.POSITIVE_INFINITY;
  system.spawnProcess('bench', function* (u) {
    const r = yield* u.mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
    before = usedBytes();
    const c0 = process.cpuUsage();
    const l0 = performance.now(); // host time of the faulting loop alone (no boot, mmap or exit)
    let k0 = c0;
    for (let p = 0; p < pages; p++) {
      yield* u.store8(r.value + p * 4096, value);
      if (chunk !== undefined && (p + 1) % chunk === 0) {
        const k = process.cpuUsage(k0);
        bestChunkCpuNs = Math.min(bestChunkCpuNs, ((k.user + k.system) * 1000) / chunk);
        k0 = process.cpuUsage();
      }
    }
    loopMs = performance.now() - l0;
    const c = process.cpuUsage(c0);
    loopCpuMs = (c.user + c.system) / 1000;
    faults = u.rusage().minflt;
    after = usedBytes(); // the pages are still resident here (the process has not exited)
  });
  const t0 = performance.now();
  const res = system.run();
  const hostMs = performance.now() - t0;
  if (!res.ok) throw new Error(`run failed: ${res.failure?.message}`);
  if (chunk === undefined) bestChunkCpuNs = (loopCpuMs * 1e6) / faults;
  return {
    hostMs,
    loopMs,
    loopCpuMs,
    faults,
    simNs: res.time,
    bytesPerPage: (after - before) / faults,
    bestChunkCpuNs,
  };
}
