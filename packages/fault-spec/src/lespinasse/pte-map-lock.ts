import type { ClassicVmFault } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import { type LockedPte, pteLockptr } from '@spf/vma';
import type { LespinasseSpfState } from './lespinasse-state.js';
import { mmapSeqReadCheck } from './mmap-seq.js';
import { speculativePageWalkBegin, speculativePageWalkEnd } from './speculative-page-walk.js';

/**
 * Models `__pte_map_lock()` in mm/memory.c of the 2022 SPF series (also what `pte_spinlock()` does there,
 * when `vmf->pte` is already known): lock the PTE table of `vmf.address` for a speculative fault, or give up.
 *
 * Inside a {@link speculativePageWalkBegin} section: (1) mmap_seq must still equal the fault's snapshot, so
 * the page tables the walk saw have not been freed and cannot be until the section ends
 * (SPF_ABORT_PTE_MAP_LOCK_SEQ1); (2) the PMD must still hold `vmf.origPmd` (`pmd_same()`,
 * SPF_ABORT_PTE_MAP_LOCK_PMD); (3) the PTE lock is taken with `spin_trylock()` only: a holder may be waiting
 * for this CPU to acknowledge a TLB-shootdown IPI, which it cannot with interrupts off, and a retry loop could
 * starve (SPF_ABORT_PTE_MAP_LOCK_PTL); (4) with the lock held, mmap_seq is checked again: from here on no
 * writer can have changed the VMA or the page tables behind the fault, which may commit
 * (SPF_ABORT_PTE_MAP_LOCK_SEQ2). There is no retry: any failure returns null and the fault falls back to
 * mmap_lock. On success the walk section ends (the PTE lock now keeps the table alive).
 *
 * Each step is a switch of `state.checks` for experiments (`mmapSeqCheckBeforePtl`, `pmdSame`, `ptlTrylock`:
 * off means `spin_lock()`, `mmapSeqRecheck`).
 */
export function* lespinassePteMapLock(
  state: LespinasseSpfState,
  vmf: ClassicVmFault,
): Kernel<LockedPte | null> {
  const { mm, checks, counters } = state;
  const pt = mm.pgd;
  yield* speculativePageWalkBegin(mm, state.walkGuard);
  if (checks.mmapSeqCheckBeforePtl && !(yield* mmapSeqReadCheck(mm, state.seq))) {
    counters.SPF_ABORT_PTE_MAP_LOCK_SEQ1++;
    yield* speculativePageWalkEnd(mm, state.walkGuard);
    return null;
  }
  yield pt.pmdpGetEffect(vmf.pmd); // pmdp_get(), inline form
  const pmdval = pt.entry(vmf.pmd);
  if (checks.pmdSame && pmdval !== vmf.origPmd) {
    counters.SPF_ABORT_PTE_MAP_LOCK_PMD++;
    yield* speculativePageWalkEnd(mm, state.walkGuard);
    return null;
  }
  const ptl = pteLockptr(pt, pmdval);
  const ptep = vmf.pte ?? pt.lowerEntryPointer(pmdval, vmf.address, 1);
  if (checks.ptlTrylock) {
    if (!(yield* ptl.trylock())) {
      counters.SPF_ABORT_PTE_MAP_LOCK_PTL++;
      yield* speculativePageWalkEnd(mm, state.walkGuard);
      return null;
    }
  } else {
    yield* ptl.lock();
  }
  if (checks.mmapSeqRecheck && !(yield* mmapSeqReadCheck(mm, state.seq))) {
    counters.SPF_ABORT_PTE_MAP_LOCK_SEQ2++;
    yield* ptl.unlock();
    yield* speculativePageWalkEnd(mm, state.walkGuard);
    return null;
  }
  yield* speculativePageWalkEnd(mm, state.walkGuard);
  return { ptep, ptl };
}
