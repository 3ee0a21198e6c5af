import type { UserContext } from '@spf/kernel';
import { O_CREAT, O_RDWR, O_TRUNC, POSIX_FADV_DONTNEED } from '@spf/kernel';
import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type WorkloadResult,
  WorkloadConfigError,
} from '../workload.js';

/** What every will-it-scale file test takes (page_fault2, page_fault3, page_fault4). */
export interface FileFaultParams extends BaseParams {
  /** `threads`: one process, one thread per CPU; `processes`: one single-threaded process per CPU. */
  readonly mode: 'threads' | 'processes';
  /** Pages of each task's file and mapping (will-it-scale's MEMSIZE is 128 MiB = 32,768 pages). */
  readonly pages: number;
  /** mmap / touch every page / munmap rounds per task (will-it-scale loops until its timer stops it). */
  readonly rounds: number;
}

/** How one of the file tests maps and touches its file. */
export interface FileFaultLoop {
  /** The workload's name (the processes and files are named after it). */
  readonly name: string;
  /** MAP_PRIVATE (page_fault2, page_fault4) or MAP_SHARED (page_fault3). */
  readonly share: 'private' | 'shared';
  /** Write 0 to the first byte of each page (page_fault2/3) or read it (page_fault4). */
  readonly access: 'write' | 'read';
  /**
   * `cached`: the file's pages stay in the page cache between rounds (will-it-scale's steady state);
   * `uncached`: each task evicts its file with posix_fadvise(POSIX_FADV_DONTNEED) before every round, so the
   * round's faults read the file from the device.
   */
  readonly cache: 'cached' | 'uncached';
}

/** Byte `i` of page `pg` of a task's file: page_fault4 (uncached) checks what it reads against it. */
function fileByte(pg: number): number {
  return (pg * 7 + 1) & 0xff;
}

/**
 * One will-it-scale file task: create the task's own file of `pages` pages (will-it-scale's mkstemp +
 * ftruncate), then `rounds` times mmap it, touch the first byte of every page, munmap. Calls `done` with the
 * window over the rounds (the file's creation is outside it, as will-it-scale's set-up is outside its timer).
 */
function* fileTask(
  u: UserContext,
  loop: FileFaultLoop,
  p: FileFaultParams,
  task: number,
  done: (t0: number, t1: number) => void,
): Kernel<void> {
  const len = p.pages * PAGE_SIZE;
  const fd = yield* u.open(`${loop.name}.${task}`, O_RDWR | O_CREAT | O_TRUNC);
  if (!fd.ok) throw new Error(`${loop.name}: open failed with errno ${fd.errno}`);
  // will-it-scale ftruncate()s a sparse file, and its timer runs long after the first round has brought
  // every page into the page cache. We write the file instead, so the page cache holds every page before
  // the measured window starts (the steady state); in our model a hole is still read from the device.
  const data = new Uint8Array(len);
  if (loop.cache === 'uncached') for (let pg = 0; pg < p.pages; pg++) data[pg * PAGE_SIZE] = fileByte(pg);
  const w = yield* u.pwrite(fd.value, 0, data);
  if (!w.ok) throw new Error(`${loop.name}: pwrite failed with errno ${w.errno}`);
  const s = yield* u.fsync(fd.value);
  if (!s.ok) throw new Error(`${loop.name}: fsync failed with errno ${s.errno}`);
  const flags = loop.share === 'private' ? MAP_PRIVATE : MAP_SHARED;
  const t0 = yield* u.clock();
  for (let r = 0; r < p.rounds; r++) {
    if (loop.cache === 'uncached') {
      const e = yield* u.posixFadvise(fd.value, 0, 0, POSIX_FADV_DONTNEED);
      if (!e.ok) throw new Error(`${loop.name}: posix_fadvise failed with errno ${e.errno}`);
    }
    const m = yield* u.mmap(0, len, PROT_READ | PROT_WRITE, flags, fd.value, 0);
    if (!m.ok) throw new Error(`${loop.name}: mmap failed with errno ${m.errno}`);
    for (let pg = 0; pg < p.pages; pg++) {
      const addr = m.value + pg * PAGE_SIZE;
      if (loop.access === 'write') yield* u.store8(addr, 0);
      else {
        const v = yield* u.load8(addr);
        const want = loop.cache === 'uncached' ? fileByte(pg) : 0;
        if (v !== want) throw new Error(`${loop.name}: page ${pg} read ${v}, expected ${want}`);
      }
    }
    const un = yield* u.munmap(m.value, len);
    if (!un.ok) throw new Error(`${loop.name}: munmap failed with errno ${un.errno}`);
  }
  done(t0, yield* u.clock());
}

/**
 * Runs a will-it-scale file test in `p.mode` on a freshly booted system (file system at `/mnt` with the
 * default device) and returns iterations (pages touched) per simulated second over the window from the first
 * task's start to the last task's end, will-it-scale's figure; `extra.majorFaults` counts the faults that
 * read the device.
 */
export function runFileFaultLoop(loop: FileFaultLoop, p: FileFaultParams): WorkloadResult {
  checkInt(`${loop.name} pages`, p.pages, 1, 1 << 16);
  checkInt(`${loop.name} rounds`, p.rounds, 1, 1 << 16);
  if (p.mode !== 'threads' && p.mode !== 'processes') {
    throw new WorkloadConfigError(
      `${loop.name} mode must be threads or processes, got ${JSON.stringify(p.mode)}`,
    );
  }
  const tasks = p.cpus;
  // Each task's file in the page cache, its private copies (page_fault2), and room for the rest.
  const system = bootFor(p, (tasks * (3 * p.pages + 32) + 8192) * PAGE_SIZE);
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  const done = (t0: number, t1: number) => {
    first = Math.min(first, t0);
    last = Math.max(last, t1);
  };
  if (p.mode === 'threads') {
    system.spawnProcess(`${loop.name}_threads`, function* (u) {
      for (let i = 1; i < tasks; i++) yield* u.spawnThread((t) => fileTask(t, loop, p, i, done), i);
      yield* fileTask(u, loop, p, 0, done);
    });
  } else {
    for (let i = 0; i < tasks; i++) {
      system.spawnProcess(`${loop.name}_processes.${i}`, (u) => fileTask(u, loop, p, i, done), { cpu: i });
    }
  }
  runToEnd(system, loop.name);
  let majors = 0;
  for (const proc of system.processes) majors += proc.rusage().majflt;
  const iterations = tasks * p.rounds * p.pages;
  const simNs = last - first;
  return resultOf(system, iterations / (simNs / 1e9), 'iterations/s', simNs, { majorFaults: majors });
}
