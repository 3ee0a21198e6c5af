import { type Kernel, readEffect } from '@spf/machine';
import type { SpeculativeFaultState } from './speculative-fault-state.js';

/**
 * Models `vma_has_changed()` of Dufour's SPF v12 (mm/memory.c): the VMA was unlinked from the tree
 * (`RB_EMPTY_NODE(&vma->vm_rb)`, our `vma.detached`; switch `detachedCheck`) or its `vm_sequence` moved since
 * the fault's snapshot. Reading a VMA that was freed meanwhile is reported as a use-after-free.
 */
export function* vmaHasChanged(s: SpeculativeFaultState): Kernel<boolean> {
  const vma = s.vma;
  yield readEffect(vma.line, 'vma_has_changed');
  vma.checkLive('vma_has_changed');
  const detached = vma.detached;
  const seq = yield* vma.vmSequence.rawReadSeqcount();
  return (s.checks.detachedCheck && detached) || seq !== s.seq;
}
