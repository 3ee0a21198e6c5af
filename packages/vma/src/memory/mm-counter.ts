import { type Kernel, MemoryLine, rmwEffect, self, writeEffect } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type MmStruct, NR_MM_COUNTERS } from '../mm-struct.js';

/**
 * How `add_mm_counter()` updates `mm->rss_stat`:
 * - `percpu`: Linux 6.2 and later, where `rss_stat` is a `percpu_counter`: an update is a store to this
 *   CPU's own counter, so faults and syscalls on different CPUs never bounce a shared line (the default);
 * - `atomic`: Linux before 6.2 without SPLIT_RSS_COUNTING (an `atomic_long_t` per counter): every update
 *   is a locked read-modify-write of one line of the mm shared by all CPUs.
 * Faults and syscalls use the same choice, so both pay the same cost.
 */
export type RssCounting = 'percpu' | 'atomic';

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
 * cost of `mm.rssCounting` (see {@link RssCounting}). The value lands in `mm.rss` at once: readers of
 * `get_mm_counter()` sum the per-CPU parts, which this models exactly.
 */
export function* addMmCounter(mm: MmStruct, type: number, delta: number): Kernel<void> {
  if (mm.rssCounting === 'atomic') {
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
