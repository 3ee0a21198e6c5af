import { type Kernel, localIrqDisable, localIrqEnable } from '@spf/machine';
import type { MmStruct } from '@spf/vma';
import type { SpeculativePageWalkGuard } from './lespinasse-options.js';

/**
 * Models `speculative_page_walk_begin()` in mm/memory.c of the 2022 SPF series: keeps the page tables the
 * speculative fault is about to read from being freed until {@link speculativePageWalkEnd}. With `rcu`
 * (`CONFIG_MMU_GATHER_RCU_TABLE_FREE`: tables are freed by an RCU callback) an RCU read-side section is
 * enough; with `irqoff` interrupts are disabled as fast GUP does, so the TLB-shootdown IPI that precedes
 * every table free cannot be acknowledged by this CPU until the walk ends. `guard` null: the check is
 * switched off (an experiment) and nothing protects the walk.
 */
export function speculativePageWalkBegin(mm: MmStruct, guard: SpeculativePageWalkGuard | null): Kernel<void> {
  // The guard's own kernel code, not wrapped in a generator of ours (one frame fewer per section).
  if (guard === 'rcu') return mm.rcu.readLock();
  if (guard === 'irqoff') return localIrqDisable();
  return nothing();
}

/** Models `speculative_page_walk_end()`: ends what {@link speculativePageWalkBegin} started. */
export function speculativePageWalkEnd(mm: MmStruct, guard: SpeculativePageWalkGuard | null): Kernel<void> {
  if (guard === 'rcu') return mm.rcu.readUnlock();
  if (guard === 'irqoff') return localIrqEnable();
  return nothing();
}

/** No guard (the check switched off): no effect. */
function* nothing(): Kernel<void> {}
