import { type Kernel, KernelFault, MemoryLine, readEffect, rmwEffect, self, writeEffect } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import {
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  type MmStruct,
  NR_MM_COUNTERS,
  RSS_TYPE_NAMES,
} from '../mm-struct.js';

/**
 * One of an mm's RSS counters (`mm->rss_stat[type]`, a `struct percpu_counter` since Linux 6.2), as kernel
 * code: the injection point of Lab 7. An mm built with `rssCounting: factory` makes one per counter type and
 * routes every update and every read through it, so the counter's own memory accesses are its cost.
 * Updates come from faults and syscalls (process context, on the CPU of the task that runs them).
 */
export interface RssCounter {
  /** Models `add_mm_counter()` (`percpu_counter_add()`): adds `delta` (negative to subtract). */
  add(delta: number): Kernel<void>;
  /**
   * Models `get_mm_counter()` (`percpu_counter_read_positive()`): the cheap read. It may lag the true value
   * by what the CPUs have not folded yet (at most `nrCpus × batch`), and is never negative.
   */
  read(): Kernel<number>;
  /**
   * Models `percpu_counter_sum()`: the exact value, which may be negative (updates of one page on two CPUs,
   * or a lost update). `get_mm_counter_sum()` (/proc/PID/status) clamps it at 0; `check_mm()` at exit wants
   * it to be exactly 0.
   */
  sum(): Kernel<number>;
}

/** What an {@link RssCounterFactory} is told about the counter it makes. */
export interface RssCounterInfo {
  /** A label for reports and memory lines, e.g. `mm[1]->rss_stat[MM_ANONPAGES]`. */
  readonly name: string;
  /** The counter type (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS or MM_SHMEMPAGES). */
  readonly type: number;
}

/** Makes the RSS counters of a new mm (`mm_init()`'s `percpu_counter_init_many()`), one per type. */
export type RssCounterFactory = (info: RssCounterInfo) => RssCounter;

/**
 * How `add_mm_counter()` updates `mm->rss_stat`:
 * - `percpu`: Linux 6.2 and later, where `rss_stat` is a `percpu_counter`: an update is a store to this
 *   CPU's own counter, so faults and syscalls on different CPUs never bounce a shared line (the default);
 * - `atomic`: Linux before 6.2 without SPLIT_RSS_COUNTING (an `atomic_long_t` per counter): every update
 *   is a locked read-modify-write of one line of the mm shared by all CPUs;
 * - a {@link RssCounterFactory}: counters written as kernel code (Lab 7), whose own effects are the cost.
 * Faults and syscalls use the same choice, so both pay the same cost. The two built-in models keep the
 * value exact at once (what their readers would sum); a factory's counters hold their own value.
 */
export type RssCounting = 'percpu' | 'atomic' | RssCounterFactory;

/** `check_mm()` found an RSS counter that is not zero once the address space is gone. */
export class BadRssCounterStateError extends KernelFault {
  override name = 'BadRssCounterStateError';
  constructor(
    readonly mm: string,
    readonly type: number,
    readonly value: number,
  ) {
    super(
      'bad-rss-counter',
      `BUG: Bad rss-counter state mm:${mm} type:${RSS_TYPE_NAMES[type]} val:${value} (every page was unmapped, so every RSS counter must sum to 0: an update was lost or counted twice)`,
    );
  }
}

/** Models `mm_counter_file()` in include/linux/mm.h: shmem pages (swap-backed) vs. ordinary file pages. */
export function mmCounterFile(page: Page): number {
  return page.test('swapbacked') ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** Models `mm_counter()` in include/linux/mm.h: which RSS counter a mapped page is accounted in. */
export function mmCounter(page: Page): number {
  return page.test('anon') ? MM_ANONPAGES : mmCounterFile(page);
}

/**
 * Models `add_mm_counter()` in include/linux/mm.h: adds `delta` to RSS counter `type` of `mm`, with the
 * cost of `mm.rssCounting` (see {@link RssCounting}). With the built-in models the value lands in `mm.rss` at
 * once: readers of `get_mm_counter()` sum the per-CPU parts, which this models exactly. With a factory's
 * counters ({@link MmStruct.rssStat}) the update is the counter's `add()`, and `mm.rss` is only the
 * simulator's own exact tally for its invariant checks (it costs nothing and no kernel code reads it).
 */
export function* addMmCounter(mm: MmStruct, type: number, delta: number): Kernel<void> {
  const counters = mm.rssStat;
  if (counters !== null) {
    yield* counters[type].add(delta);
  } else if (mm.rssCounting === 'atomic') {
    yield rmwEffect(mm.rssLine, 'add_mm_counter');
  } else {
    const { cpu } = yield* self();
    let line = mm.rssCpuLines[cpu];
    if (line === undefined) {
      line = new MemoryLine(`${mm.name}->rss_stat[cpu${cpu}]`);
      mm.rssCpuLines[cpu] = line;
    }
    yield writeEffect(line, 'add_mm_counter');
  }
  mm.rss[type] += delta;
}

/**
 * Models `add_mm_rss_vec()` in mm/memory.c: applies the per-counter deltas a page-table walk gathered in
 * `rss` (indexed like `mm.rss`) with one {@link addMmCounter} per counter that changed.
 */
export function* addMmRssVec(mm: MmStruct, rss: readonly number[]): Kernel<void> {
  for (let i = 0; i < NR_MM_COUNTERS; i++) if (rss[i] !== 0) yield* addMmCounter(mm, i, rss[i]);
}

/**
 * Models `get_mm_counter()` in include/linux/mm.h: the cheap read of RSS counter `type`
 * (`percpu_counter_read_positive()`): a factory's counter's `read()`, or one read of the shared line with the
 * built-in models (whose value is exact).
 */
export function* getMmCounter(mm: MmStruct, type: number): Kernel<number> {
  const counters = mm.rssStat;
  if (counters !== null) return yield* counters[type].read();
  yield readEffect(mm.rssLine, 'get_mm_counter');
  return Math.max(0, mm.rss[type]);
}

/**
 * Models `get_mm_counter_sum()` in include/linux/mm.h (`percpu_counter_sum_positive()`): the exact value of
 * RSS counter `type`, as /proc/PID/status reads it since Linux 6.16 (commit 82241a83cd15, "mm: fix the
 * inaccurate memory statistics issue for users"). A factory's counter's `sum()`; with the built-in per-CPU
 * model a read of the shared line and of every CPU's line used so far.
 */
export function* getMmCounterSum(mm: MmStruct, type: number): Kernel<number> {
  const counters = mm.rssStat;
  if (counters !== null) return Math.max(0, yield* counters[type].sum());
  yield readEffect(mm.rssLine, 'get_mm_counter_sum');
  if (mm.rssCounting === 'percpu') {
    for (const line of mm.rssCpuLines) if (line !== undefined) yield readEffect(line, 'get_mm_counter_sum');
  }
  return Math.max(0, mm.rss[type]);
}

/**
 * Models the RSS counter part of `check_mm()` in kernel/fork.c (run from `__mmdrop()` once the address space
 * is gone): every counter must sum to 0, else the kernel reports "BUG: Bad rss-counter state". Here that is a
 * {@link BadRssCounterStateError} that stops the run. Only a factory's counters are summed (with their own
 * cost): the built-in models' value is `mm.rss`, which the mm invariant checker compares with the page
 * tables before exit, so for them this check does nothing (and costs nothing).
 */
export function* checkMm(mm: MmStruct): Kernel<void> {
  const counters = mm.rssStat;
  if (counters === null) return;
  for (let i = 0; i < NR_MM_COUNTERS; i++) {
    const x = yield* counters[i].sum();
    if (x !== 0) throw new BadRssCounterStateError(mm.name, i, x);
  }
}
