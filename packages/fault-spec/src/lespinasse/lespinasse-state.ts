import type { ClassicVmFault, FaultEnv, SpeculativeFaultHooks } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import type { LockedPte, MmStruct } from '@spf/vma';
import type { LespinasseCounters } from './lespinasse-counters.js';
import type { LespinasseCheck, SpeculativePageWalkGuard } from './lespinasse-options.js';
import { lespinassePteMapLock } from './pte-map-lock.js';

/**
 * What one speculative fault of {@link lespinasseSpf} carries from its start to its commit: the mm, the
 * mmap_seq snapshot (`vmf->seq` in the series), the walk guard in force (null when the
 * `speculativePageWalk` check is off), the design's checks and its counters. It is also the fault's
 * `SpeculativeFaultHooks` (`vmf.speculative`): its `pteMapLock()` is the series' `__pte_map_lock()` for this
 * fault (a method, so no closure is built per fault).
 */
export class LespinasseSpfState implements SpeculativeFaultHooks {
  constructor(
    readonly env: FaultEnv,
    readonly mm: MmStruct,
    readonly seq: number,
    readonly walkGuard: SpeculativePageWalkGuard | null,
    readonly checks: Readonly<Record<LespinasseCheck, boolean>>,
    readonly counters: LespinasseCounters,
  ) {}

  pteMapLock(vmf: ClassicVmFault): Kernel<LockedPte | null> {
    return lespinassePteMapLock(this, vmf);
  }
}
