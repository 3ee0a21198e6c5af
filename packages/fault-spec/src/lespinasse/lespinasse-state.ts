import type {
  ClassicVmFault,
  FaultEnv,
  SpeculativeFaultHooks,
  SpeculativeFileAbort,
  SpeculativeFileHooks,
  SpeculativeFilemapChecks,
} from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import type { LockedPte, MmStruct } from '@spf/vma';
import { LESPINASSE_FILE_ABORT_COUNTERS, type LespinasseCounters } from './lespinasse-counters.js';
import type { LespinasseCheck, SpeculativePageWalkGuard } from './lespinasse-options.js';
import { mmapSeqReadCheck } from './mmap-seq.js';
import { lespinassePteMapLock } from './pte-map-lock.js';

/**
 * What one speculative fault of {@link lespinasseSpf} carries from its start to its commit: the mm, the
 * mmap_seq snapshot (`vmf->seq` in the series), the walk guard in force (null when the
 * `speculativePageWalk` check is off), the design's checks and its counters. It is also the fault's
 * `SpeculativeFaultHooks` (`vmf.speculative`): its `pteMapLock()` is the series' `__pte_map_lock()` for this
 * fault (a method, so no closure is built per fault), and for a fault on a file VMA (`fileVmas`, the 2021
 * RFC) its own `file` hooks: the RCU section with an mmap_seq check around `->fault` and `->map_pages`.
 */
export class LespinasseSpfState implements SpeculativeFaultHooks, SpeculativeFileHooks {
  /** This fault's file hooks: itself on a file VMA, else null (a file fault then gives up). */
  readonly file: SpeculativeFileHooks | null;
  readonly checks: Readonly<Record<LespinasseCheck, boolean>> & SpeculativeFilemapChecks;

  constructor(
    readonly env: FaultEnv,
    readonly mm: MmStruct,
    readonly seq: number,
    readonly walkGuard: SpeculativePageWalkGuard | null,
    checks: Readonly<Record<LespinasseCheck, boolean>>,
    readonly counters: LespinasseCounters,
    fileVma = false,
  ) {
    this.checks = checks;
    this.file = fileVma ? this : null;
  }

  pteMapLock(vmf: ClassicVmFault): Kernel<LockedPte | null> {
    return lespinassePteMapLock(this, vmf);
  }

  /**
   * The section of "mm: implement speculative handling in __do_fault()" and "... in do_fault_around()" (the
   * 2021 RFC): `rcu_read_lock()` (switch `fileRcu`), then `mmap_seq_read_check()` (switch
   * `mmapSeqCheckBeforeFile`): if no writer ran since the snapshot, the VMA the fault copied was still in the
   * tree at this point, so its file had not been fput, and the RCU-deferred fput cannot run before the
   * section ends. False (SPF_ABORT_FILE_SEQ) when mmap_seq moved.
   */
  *fileAccessBegin(): Kernel<boolean> {
    if (this.checks.fileRcu) yield* this.mm.rcu.readLock();
    if (this.checks.mmapSeqCheckBeforeFile && !(yield* mmapSeqReadCheck(this.mm, this.seq))) {
      if (this.checks.fileRcu) yield* this.mm.rcu.readUnlock();
      this.aborted('file-section');
      return false;
    }
    return true;
  }

  /** `rcu_read_unlock()` at the end of that section. */
  *fileAccessEnd(): Kernel<void> {
    if (this.checks.fileRcu) yield* this.mm.rcu.readUnlock();
  }

  aborted(reason: SpeculativeFileAbort): void {
    this.counters[LESPINASSE_FILE_ABORT_COUNTERS[reason]]++;
  }
}
