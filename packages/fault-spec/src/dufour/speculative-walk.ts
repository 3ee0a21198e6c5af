import { type Kernel, localIrqRestore, localIrqSave } from '@spf/machine';
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
  const irqs = s.checks.irqOffWalk ? yield* localIrqSave() : null;
  try {
    return yield* readPageTableEntries(s);
  } finally {
    if (irqs !== null) yield* localIrqRestore(irqs);
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
  let p4dp = pgdp;
  if (pt.la57) {
    if (pgdNone(yield* pt.pgdpGet(pgdp))) return 'missing';
    p4dp = yield* pt.p4dOffset(pgdp, addr);
  }
  if (pudNone(yield* pt.p4dpGet(p4dp))) return 'missing';
  const pudp = yield* pt.pudOffset(p4dp, addr);
  const pud = yield* pt.pudpGet(pudp);
  if (pudNone(pud)) return 'missing';
  if (pudLeaf(pud)) return 'huge';
  const pmdp = yield* pt.pmdOffset(pudp, addr);
  const pmd = yield* pt.pmdpGet(pmdp);
  if (pmdNone(pmd)) return 'missing';
  if (pmdLeaf(pmd)) return 'huge';
  const ptep = yield* pt.pteOffsetMap(pmdp, addr);
  if (ptep === null) return 'huge';
  s.pmdp = pmdp;
  s.origPmd = pmd;
  s.ptep = ptep;
  s.origPte = yield* pt.ptepGet(ptep);
  return 'ok';
}
