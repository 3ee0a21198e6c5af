import type { FaultEnv } from '@spf/fault-classic';
import type { MmStruct } from '@spf/vma';
import type { LespinasseCounters } from './lespinasse-counters.js';
import type { LespinasseCheck, SpeculativePageWalkGuard } from './lespinasse-options.js';

/**
 * What one speculative fault of {@link lespinasseSpf} carries from its start to its commit: the mm, the
 * mmap_seq snapshot (`vmf->seq` in the series), the walk guard in force (null when the
 * `speculativePageWalk` check is off), the design's checks and its counters.
 */
export interface LespinasseSpfState {
  readonly env: FaultEnv;
  readonly mm: MmStruct;
  readonly seq: number;
  readonly walkGuard: SpeculativePageWalkGuard | null;
  readonly checks: Readonly<Record<LespinasseCheck, boolean>>;
  readonly counters: LespinasseCounters;
}
