import { type Kernel, irqDisableEffect, irqRestoreEffect } from '@spf/machine';
import { PAGE_SIZE, pgdNone, pmdLeaf, pmdNone, pudLeaf, pudNone } from '@spf/pagetable';
import type { SpeculativeFaultState } from './speculative-fault-state.js';

/** How the walk ended: the PTE table was reached, an upper level is missing, or it is a huge mapping. */
export type SpeculativeWalkResult = 'ok' | 'missing' | 'huge';

/**
 * The page-table walk of `__handle_speculative_fault()` in Dufour's SPF v12 (mm/memory.c): from the pgd down
 * to the PTE, reading each entry once, with interrupts disabled (switch `irqOffWalk`) so that a concurrent
 * unmap, which frees page tables only after a TLB-shootdown IPI every CPU of the mm must answer, cannot free
 * them under the walk. Stops at a missing level (the series never allocates page tables speculatively: the
 * first fault of each PMD range goes through the classic path) or at a huge entry (not handled speculatively).
 * Fills `pmdp`, `origPmd`, `ptep` and `origPte` of the state.
 */
export function* speculativeWalk(s: SpeculativeFaultState): Kernel<SpeculativeWalkResult> {
  const irqs = s.checks.irqOffWalk ? ((yield irqDisableEffect) as boolean) : null;
  try {
    return yield* readPageTableEntries(s);
  } finally {
    if (irqs !== null) yield irqRestoreEffect(irqs);
  }
}

/**
 * The entry reads of {@link speculativeWalk} without its interrupt handling: pgd down to the PTE, each entry
 * read once, filling `pmdp`, `origPmd`, `ptep` and `origPte`. Safe only with interrupts off (or page tables
 * freed by RCU): it is exported for Lab 4 of the course, where the student disables them around it.
 */
export function* readPageTableEntries(s: SpeculativeFaultState): Kernel<SpeculativeWalkResult> {
  const pt = s.mm.pgd;
  const addr = s.address - (s.address % PAGE_SIZE);
  const pgdp = pt.pgdOffset(addr);
  // Each entry read is PageTables' inline form (`yield pt.xxxEffect(p)`, then `pt.entry(p)`): the same reads,
  // in the same order, as pgdp_get() ... ptep_get(), without a generator frame each.
  let p4dp = pgdp;
  if (pt.la57) {
    yield pt.pgdpGetEffect(pgdp);
    if (pgdNone(pt.entry(pgdp))) return 'missing';
    p4dp = yield* pt.p4dOffset(pgdp, addr);
  }
  yield pt.p4dpGetEffect(p4dp);
  if (pudNone(pt.entry(p4dp))) return 'missing';
  yield pt.pudOffsetEffect(p4dp);
  const pudp = pt.lowerEntryPointer(pt.entry(p4dp), addr, 3);
  yield pt.pudpGetEffect(pudp);
  const pud = pt.entry(pudp);
  if (pudNone(pud)) return 'missing';
  if (pudLeaf(pud)) return 'huge';
  yield pt.pmdOffsetEffect(pudp);
  const pmdp = pt.lowerEntryPointer(pt.entry(pudp), addr, 2);
  yield pt.pmdpGetEffect(pmdp);
  const pmd = pt.entry(pmdp);
  if (pmdNone(pmd)) return 'missing';
  if (pmdLeaf(pmd)) return 'huge';
  yield pt.pteOffsetMapEffect(pmdp);
  const ptep = pt.pteOffsetIn(pt.entry(pmdp), addr);
  if (ptep === null) return 'huge';
  s.pmdp = pmdp;
  s.origPmd = pmd;
  s.ptep = ptep;
  yield pt.ptepGetEffect(ptep);
  s.origPte = pt.entry(ptep);
  return 'ok';
}
