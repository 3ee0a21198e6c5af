/**
 * The events of Dufour's SPF v12, under the series' names: `speculative_pgfault` (the /proc/vmstat line of
 * SPF_ATTEMPT, counted for each fault the speculative path finished; the perf software event
 * `speculative-faults` counts the same), and the trace events of include/trace/events/pagefault.h that say why
 * an attempt was abandoned (`spf_vma_changed`, `spf_vma_noanon`, `spf_vma_notsup`, `spf_vma_access`,
 * `spf_pmd_changed`, `spf_pte_lock`). Three counters are ours, not the series': `spf_no_vma` (no VMA at the
 * address: v12 falls back without a trace), `spf_pgtable_missing` (an upper page-table level was missing: v12
 * traces these as `spf_vma_notsup`; counted apart for Lespinasse's question 3) and `spf_pgtable_alloc` (tables
 * the `specPgtableAlloc` option installed; not an abort).
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
}

/** The reasons an attempt is abandoned (the abort counters). */
export type DufourAbortReason = Exclude<keyof DufourCounters, 'speculative_pgfault' | 'spf_pgtable_alloc'>;

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
  };
}
