import type { SpeculativeFileAbort } from '@spf/fault-classic';

/**
 * Why a speculative fault gave up, named as the 2022 series' `CONFIG_SPECULATIVE_PAGE_FAULT_STATS` events
 * (include/linux/vm_event_item.h), limited to the aborts this model can reach.
 */
export const LESPINASSE_ABORT_REASONS = [
  'SPF_ABORT_ODD',
  'SPF_ABORT_UNMAPPED',
  'SPF_ABORT_NO_SPECULATE',
  'SPF_ABORT_VMA_COPY',
  'SPF_ABORT_ACCESS_ERROR',
  'SPF_ABORT_PUD',
  'SPF_ABORT_PMD',
  'SPF_ABORT_ANON_VMA',
  'SPF_ABORT_PTE_MAP_LOCK_SEQ1',
  'SPF_ABORT_PTE_MAP_LOCK_PMD',
  'SPF_ABORT_PTE_MAP_LOCK_PTL',
  'SPF_ABORT_PTE_MAP_LOCK_SEQ2',
  'SPF_ABORT_FAULT',
  'SPF_ABORT_SWAP',
  'SPF_ABORT_FILE_RELEASE',
  'SPF_ABORT_FILE_SEQ',
  'SPF_ABORT_FILE_PAGECACHE_MISS',
  'SPF_ABORT_FILE_PAGE_LOCKED',
  'SPF_ABORT_FILE_NOT_UPTODATE',
  'SPF_ABORT_FILE_READAHEAD',
  'SPF_ABORT_FILE_TRUNCATED',
  'SPF_ABORT_FILE_FAULT_AROUND',
  'SPF_ABORT_FILE_MKWRITE',
] as const;

/** The counter of each abort reason of the speculative file path (@spf/fault-classic's `SpeculativeFileAbort`). */
export const LESPINASSE_FILE_ABORT_COUNTERS = {
  'pagecache-miss': 'SPF_ABORT_FILE_PAGECACHE_MISS',
  'page-locked': 'SPF_ABORT_FILE_PAGE_LOCKED',
  'page-not-uptodate': 'SPF_ABORT_FILE_NOT_UPTODATE',
  readahead: 'SPF_ABORT_FILE_READAHEAD',
  truncated: 'SPF_ABORT_FILE_TRUNCATED',
  'fault-around': 'SPF_ABORT_FILE_FAULT_AROUND',
  'page-mkwrite': 'SPF_ABORT_FILE_MKWRITE',
  'anon-vma': 'SPF_ABORT_ANON_VMA',
  'file-section': 'SPF_ABORT_FILE_SEQ',
} as const satisfies Record<SpeculativeFileAbort, (typeof LESPINASSE_ABORT_REASONS)[number]>;

/** One abort reason of {@link LESPINASSE_ABORT_REASONS}. */
export type LespinasseAbortReason = (typeof LESPINASSE_ABORT_REASONS)[number];

/** The speculative paths a fault took (`SPF_ATTEMPT_ANON`, `SPF_ATTEMPT_PTE`, `SPF_ATTEMPT_WP`). */
export const LESPINASSE_ATTEMPT_KINDS = [
  'SPF_ATTEMPT_ANON',
  'SPF_ATTEMPT_FILE',
  'SPF_ATTEMPT_PTE',
  'SPF_ATTEMPT_WP',
] as const;

/**
 * The counters of {@link lespinasseSpf}: `spf_attempt` and `spf_abort` (/proc/vmstat with
 * `CONFIG_SPECULATIVE_PAGE_FAULT`), every per-reason and per-path event of `CONFIG_SPECULATIVE_PAGE_FAULT_STATS`,
 * and two of ours, not the series' (which never allocated page tables speculatively), for the `specPgtableAlloc`
 * option: `spf_pgtable_alloc`, faults that installed a missing table, and `spf_abort_pgtable_alloc`, faults
 * that gave up because mmap_seq had changed under page_table_lock (or no frame was free).
 *
 * File VMAs (`fileVmas`, the 2021 RFC): `SPF_ATTEMPT_FILE` counts the attempts on a file VMA's none PTE (the
 * RFC's statistics patch has that event), `spf_file_attempt` every attempt on a file VMA and `spf_file_abort`
 * those that aborted (ours, so that attempted, succeeded and aborted read off directly); the file path's aborts
 * by reason are ours: `SPF_ABORT_FILE_RELEASE` (vm_file not RCU-freed), `_SEQ` (mmap_seq changed before the
 * `->fault`/`->map_pages` section), `_PAGECACHE_MISS`, `_PAGE_LOCKED`, `_NOT_UPTODATE`, `_READAHEAD`,
 * `_TRUNCATED`, `_FAULT_AROUND` (fault-around did not map the faulting page) and `_MKWRITE` (a shared write);
 * a private write without an anon_vma counts `SPF_ABORT_ANON_VMA` as for anonymous memory.
 */
export type LespinasseCounters = Record<
  | 'spf_attempt'
  | 'spf_abort'
  | 'spf_pgtable_alloc'
  | 'spf_abort_pgtable_alloc'
  | 'spf_file_attempt'
  | 'spf_file_abort'
  | LespinasseAbortReason
  | (typeof LESPINASSE_ATTEMPT_KINDS)[number],
  number
>;

/** A fresh set of {@link LespinasseCounters}, all zero. */
export function newLespinasseCounters(): LespinasseCounters {
  const c: Record<string, number> = {
    spf_attempt: 0,
    spf_abort: 0,
    spf_pgtable_alloc: 0,
    spf_abort_pgtable_alloc: 0,
    spf_file_attempt: 0,
    spf_file_abort: 0,
  };
  for (const r of LESPINASSE_ABORT_REASONS) c[r] = 0;
  for (const k of LESPINASSE_ATTEMPT_KINDS) c[k] = 0;
  return c as LespinasseCounters;
}
