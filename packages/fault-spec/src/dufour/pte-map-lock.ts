import { type Kernel, irqDisableEffect, irqRestoreEffect } from '@spf/machine';
import type { ClassicVmFault } from '@spf/fault-classic';
import { type LockedPte, pteLockptr } from '@spf/vma';
import type { SpeculativeFaultState } from './speculative-fault-state.js';
import { vmaHasChanged } from './vma-has-changed.js';

/**
 * Models `pte_map_lock()` and `pte_spinlock()` of Dufour's SPF v12 (mm/memory.c) for a speculative fault:
 * with interrupts disabled (so a TLB-shootdown IPI, and therefore the freeing of the page tables, waits for
 * this CPU), check that the VMA has not changed (the page tables are then still the VMA's), that the PMD
 * still links the table the walk found (`pmd_same()`), take the PTE lock with `spin_trylock()` (spinning with
 * interrupts off could wait forever for a CPU that holds the lock while waiting for our IPI), and check the
 * VMA again under the lock: from then on a concurrent unmap or mprotect blocks on the lock. Any failure
 * counts its trace event and returns null (the caller gives up with VM_FAULT_RETRY).
 *
 * Each step is one of the handler's switches: `irqOffWalk`, `vmaChangedBeforeLock`, `pmdSame`, `ptlTrylock`
 * (off: `spin_lock()`), `ptlRecheck`.
 */
export function* dufourPteMapLock(s: SpeculativeFaultState, vmf: ClassicVmFault): Kernel<LockedPte | null> {
  const { checks, counters } = s;
  const pt = s.mm.pgd;
  const irqs = checks.irqOffWalk ? ((yield irqDisableEffect) as boolean) : null;
  if (checks.vmaChangedBeforeLock && (yield* vmaHasChanged(s))) {
    counters.spf_vma_changed++;
    if (irqs !== null) yield irqRestoreEffect(irqs);
    return null;
  }
  yield pt.pmdpGetEffect(vmf.pmd); // pmdp_get(), inline form
  const pmdval = pt.entry(vmf.pmd);
  if (checks.pmdSame && pmdval !== vmf.origPmd) {
    counters.spf_pmd_changed++;
    if (irqs !== null) yield irqRestoreEffect(irqs);
    return null;
  }
  const ptl = pteLockptr(pt, pmdval);
  if (checks.ptlTrylock) {
    if (!(yield* ptl.trylock())) {
      counters.spf_pte_lock++;
      if (irqs !== null) yield irqRestoreEffect(irqs);
      return null;
    }
  } else {
    yield* ptl.lock();
  }
  if (checks.ptlRecheck && (yield* vmaHasChanged(s))) {
    yield* ptl.unlock();
    counters.spf_vma_changed++;
    if (irqs !== null) yield irqRestoreEffect(irqs);
    return null;
  }
  if (irqs !== null) yield irqRestoreEffect(irqs);
  return { ptep: s.ptep, ptl };
}
