import { PAGE_SIZE } from '@spf/pagetable';
import type { FaultHandlerFactory, SpeculativeStats } from '@spf/fault-classic';
import { RwSemaphore } from '@spf/locks';
import { type Kernel, MAX_CPUS, now, type Policy } from '@spf/machine';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  type MmapLockKind,
  PROT_READ,
  type RssCounting,
  PROT_WRITE,
} from '@spf/vma';
import { boot, type SystemRunResult } from '../system.js';
import type { UserContext } from '../user-context.js';

/** Options of {@link runScaling}. */
export interface ScalingOptions {
  /** Faulting threads, one per CPU: 1 to 1,024 (1,023 with `churn`); 1 to 64 in the README's table. */
  readonly threads: number;
  /** Pages each thread faults in (default 64). */
  readonly pagesPerThread?: number;
  /** Add one more thread, on its own CPU, that loops on mmap/munmap while the others fault (default false). */
  readonly churn?: boolean;
  /** The fault handler (default `boot()`'s: classic). */
  readonly faultHandler?: FaultHandlerFactory;
  /** The mmap lock: Linux's rw_semaphore (default) or a range lock taken over the whole space. */
  readonly mmapLock?: MmapLockKind;
  /** How the RSS counters are kept (boot()'s `rssCounting`; default Linux 6.2's per-CPU counters). */
  readonly rssCounting?: RssCounting;
  /** Record a machine trace (for `spf run --trace`). */
  readonly trace?: boolean;
  readonly seed?: number;
  /** Scheduling policy (default `timed()`); another policy runs the same scenario as a test would. */
  readonly policy?: Policy;
  /**
   * Called (host code, during the run) once the regions are mapped and before any thread faults (`'mapped'`),
   * and once every faulting thread has finished, with every faulted page still resident (`'faulted'`): for
   * host-memory figures per resident simulated page.
   */
  readonly probe?: (phase: 'mapped' | 'faulted') => void;
}

/** What {@link runScaling} measured. */
export interface ScalingResult {
  readonly threads: number;
  readonly churn: boolean;
  /** The fault handler's name (`FaultHandler.name`). */
  readonly handler: string;
  /**
   * How the handler's lockless attempts went (`FaultHandler.speculativeStats()`: attempts, handled, aborts by
   * reason), over the whole run; null for a handler that makes none (classic).
   */
  readonly speculative: SpeculativeStats | null;
  /** Page faults taken by the faulting threads. */
  readonly faults: number;
  /**
   * Simulated nanoseconds from the moment every thread started until the last one finished. The threads
   * that started first may already have faulted before that moment (thread creation is serial), so at many
   * threads `faultsPerSec` overstates; see {@link ScalingResult.simNsFromFirstStart}.
   */
  readonly simNs: number;
  /** Simulated nanoseconds from the moment the first faulting thread started until the last one finished. */
  readonly simNsFromFirstStart: number;
  /** Faults per simulated second over {@link ScalingResult.simNs}. */
  readonly faultsPerSec: number;
  /** Faults per simulated second over {@link ScalingResult.simNsFromFirstStart} (never overstates). */
  readonly faultsPerSecFromFirstStart: number;
  /** mmap/munmap pairs the churn thread completed meanwhile. */
  readonly churnOps: number;
  /**
   * Locked read-modify-writes on the mmap_lock's cache line over the whole run (the rwsem's count, owner and
   * wait lock share it), or null with the range lock. Counted without a trace.
   */
  readonly mmapLockRmws: number | null;
  /** Host milliseconds spent running the machine (boot excluded), for host-speed figures. */
  readonly runHostMs: number;
  readonly run: SystemRunResult;
}

/** Where thread i's private region starts: one 2 MiB page table per thread, so PTE locks never contend. */
const REGION_BASE = 0x2000_0000_0000;
const REGION_STRIDE = 2 * 1024 * 1024;
const CHURN_BASE = 0x3000_0000_0000;

/**
 * Throws a RangeError unless `threads` and `pagesPerThread` are what {@link runScaling} accepts: one CPU per
 * thread (plus one for the churn thread), so at most the machine's 1,024 CPUs.
 */
export function checkScalingOptions(threads: number, pagesPerThread: number, churn = false): void {
  const most = MAX_CPUS - (churn ? 1 : 0);
  if (!Number.isInteger(threads) || threads < 1 || threads > most) {
    throw new RangeError(
      `threads must be an integer from 1 to ${most}${churn ? ' (the churn thread takes the last CPU)' : ''}, got ${threads}`,
    );
  }
  if (!Number.isInteger(pagesPerThread) || pagesPerThread < 1 || pagesPerThread > 512) {
    throw new RangeError(
      `pagesPerThread must be an integer from 1 to 512 (one page table), got ${pagesPerThread}`,
    );
  }
}

/**
 * The scaling experiment of the @spf/kernel README: one process whose N threads (one per CPU) each write
 * once to every page of their own private, pre-mapped region, under the timed policy. Every write is a
 * first-touch anonymous fault, which the classic handler handles with mmap_lock held for reading; the
 * regions use separate page tables, so the only state the threads share is the mmap_lock's cache line
 * (and the lock itself when a writer wants it). With `churn`, one more thread on its own CPU keeps
 * mapping and unmapping a small region elsewhere, taking mmap_lock for writing each time.
 */
export function runScaling(opts: ScalingOptions): ScalingResult {
  const n = opts.threads;
  const pages = opts.pagesPerThread ?? 64;
  const churn = opts.churn ?? false;
  checkScalingOptions(n, pages, churn);
  const cpus = n + (churn ? 1 : 0);
  const system = boot({
    cpus,
    seed: opts.seed,
    policy: opts.policy,
    faultHandler: opts.faultHandler,
    mmapLock: opts.mmapLock,
    rssCounting: opts.rssCounting,
    trace: opts.trace,
    memory: Math.max(64, Math.ceil(((n * (pages + 8) + 4096) * PAGE_SIZE) / 2 ** 20)) * 2 ** 20,
  });
  const state = {
    start: 0,
    firstStart: Number.POSITIVE_INFINITY,
    running: 0,
    end: 0,
    churnOps: 0,
    started: 0,
  };
  const faulter = (i: number) =>
    function* (u: UserContext): Kernel<void> {
      const base = REGION_BASE + i * REGION_STRIDE;
      state.started++;
      const t0 = yield* now();
      state.firstStart = Math.min(state.firstStart, t0);
      if (state.started === n) state.start = Math.max(state.start, t0);
      for (let p = 0; p < pages; p++) yield* u.store8(base + p * PAGE_SIZE, 1);
      const t1 = yield* now();
      state.end = Math.max(state.end, t1);
      state.running--;
      if (state.running === 0) opts.probe?.('faulted');
    };
  system.spawnProcess('scaling', function* (u) {
    // Map every region first (one mmap each, before any thread starts), so the measurement sees faults only.
    for (let i = 0; i < n; i++) {
      const r = yield* u.mmap(
        REGION_BASE + i * REGION_STRIDE,
        pages * PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      );
      if (!r.ok) throw new Error(`scaling: mmap of region ${i} failed with errno ${r.errno}`);
    }
    state.running = n;
    opts.probe?.('mapped');
    state.start = yield* now();
    for (let i = 1; i < n; i++) yield* u.spawnThread(faulter(i), i);
    if (churn) {
      yield* u.spawnThread(function* (c: UserContext): Kernel<void> {
        while (state.running > 0) {
          const r = yield* c.mmap(
            CHURN_BASE,
            4 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
          );
          if (r.ok) yield* c.munmap(CHURN_BASE, 4 * PAGE_SIZE);
          state.churnOps++;
        }
      }, n);
    }
    yield* faulter(0)(u);
  });
  const h0 = performance.now();
  const run = system.run();
  const runHostMs = performance.now() - h0;
  if (!run.ok) throw new Error(`scaling run failed: ${run.failure?.kind}: ${run.failure?.message}`);
  const faults = system.processes[0].rusage().minflt;
  const lock = system.processes[0].mm.mmapLock;
  const simNs = state.end - state.start;
  const simNsFromFirstStart = state.end - state.firstStart;
  return {
    threads: n,
    churn,
    handler: system.faultHandler.name,
    speculative: system.faultHandler.speculativeStats?.() ?? null,
    faults,
    simNs,
    simNsFromFirstStart,
    faultsPerSec: (n * pages) / (simNs / 1e9),
    faultsPerSecFromFirstStart: (n * pages) / (simNsFromFirstStart / 1e9),
    churnOps: state.churnOps,
    mmapLockRmws: lock instanceof RwSemaphore ? lock.line.rmws : null,
    runHostMs,
    run,
  };
}
