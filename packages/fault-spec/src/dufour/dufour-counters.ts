import type { SpeculativeFileAbort } from '@spf/fault-classic';

/**
 * The events of Dufour's SPF v12, under the series' names: `speculative_pgfault` (the /proc/vmstat line of
 * SPF_ATTEMPT, counted for each fault the speculative path finished; the perf software event
 * `speculative-faults` counts the same), and the trace events of include/trace/events/pagefault.h that say why
 * an attempt was abandoned (`spf_vma_changed`, `spf_vma_noanon`, `spf_vma_notsup`, `spf_vma_access`,
 * `spf_pmd_changed`, `spf_pte_lock`). Three counters are ours, not the series': `spf_no_vma` (no VMA at the
 * address: v12 falls back without a trace), `spf_pgtable_missing` (an upper page-table level was missing: v12
 * traces these as `spf_vma_notsup`; counted apart for Lespinasse's question 3) and `spf_pgtable_alloc` (tables
 * the `specPgtableAlloc` option installed; not an abort).
 *
 * With `fileVmas` (the 2019 proposal), ours too: `spf_file_attempt` (speculative attempts on a file VMA),
 * `spf_file_handled` (those finished speculatively; each also counts in `speculative_pgfault`) and the file
 * path's aborts by reason: `spf_file_release` (the mm releases `vm_file` at `remove_vma()`, so the VMA
 * reference does not hold it: not speculated), `spf_file_pagecache_miss`, `spf_file_page_locked`,
 * `spf_file_not_uptodate`, `spf_file_readahead`, `spf_file_truncated`, `spf_file_fault_around` (fault-around
 * did not map the faulting page), `spf_file_mkwrite` (a shared write: `->page_mkwrite` is never called
 * speculatively) and `spf_file_anon_vma` (a private write without an anon_vma). A file attempt can also end
 * on the generic reasons above (`spf_vma_changed`, `spf_pte_lock`, ...).
 */
export interface DufourCounters {
  speculative_pgfault: number;
  spf_vma_changed: number;
  spf_vma_noanon: number;
  spf_vma_notsup: number;
  spf_vma_access: number;
  spf_pmd_changed: number;
  spf_pte_lock: number;
  spf_no_vma: number;
  spf_pgtable_missing: number;
  spf_pgtable_alloc: number;
  spf_file_attempt: number;
  spf_file_handled: number;
  spf_file_release: number;
  spf_file_pagecache_miss: number;
  spf_file_page_locked: number;
  spf_file_not_uptodate: number;
  spf_file_readahead: number;
  spf_file_truncated: number;
  spf_file_fault_around: number;
  spf_file_mkwrite: number;
  spf_file_anon_vma: number;
}

/** The counter of each abort reason of the speculative file path (@spf/fault-classic's `SpeculativeFileAbort`). */
export const DUFOUR_FILE_ABORT_COUNTERS = {
  'pagecache-miss': 'spf_file_pagecache_miss',
  'page-locked': 'spf_file_page_locked',
  'page-not-uptodate': 'spf_file_not_uptodate',
  readahead: 'spf_file_readahead',
  truncated: 'spf_file_truncated',
  'fault-around': 'spf_file_fault_around',
  'page-mkwrite': 'spf_file_mkwrite',
  'anon-vma': 'spf_file_anon_vma',
  'file-section': 'spf_vma_changed',
} as const satisfies Record<SpeculativeFileAbort, keyof DufourCounters>;

/** The reasons an attempt is abandoned (the abort counters). */
export type DufourAbortReason = Exclude<
  keyof DufourCounters,
  'speculative_pgfault' | 'spf_pgtable_alloc' | 'spf_file_attempt' | 'spf_file_handled'
>;

/** The abort reasons, in the order the README lists them. */
export const DUFOUR_ABORT_REASONS: readonly DufourAbortReason[] = [
  'spf_vma_changed',
  'spf_vma_noanon',
  'spf_vma_notsup',
  'spf_vma_access',
  'spf_pmd_changed',
  'spf_pte_lock',
  'spf_no_vma',
  'spf_pgtable_missing',
  'spf_file_release',
  'spf_file_pagecache_miss',
  'spf_file_page_locked',
  'spf_file_not_uptodate',
  'spf_file_readahead',
  'spf_file_truncated',
  'spf_file_fault_around',
  'spf_file_mkwrite',
  'spf_file_anon_vma',
];

/** Fresh counters, all zero. */
export function makeDufourCounters(): DufourCounters {
  return {
    speculative_pgfault: 0,
    spf_vma_changed: 0,
    spf_vma_noanon: 0,
    spf_vma_notsup: 0,
    spf_vma_access: 0,
    spf_pmd_changed: 0,
    spf_pte_lock: 0,
    spf_no_vma: 0,
    spf_pgtable_missing: 0,
    spf_pgtable_alloc: 0,
    spf_file_attempt: 0,
    spf_file_handled: 0,
    spf_file_release: 0,
    spf_file_pagecache_miss: 0,
    spf_file_page_locked: 0,
    spf_file_not_uptodate: 0,
    spf_file_readahead: 0,
    spf_file_truncated: 0,
    spf_file_fault_around: 0,
    spf_file_mkwrite: 0,
    spf_file_anon_vma: 0,
  };
}
