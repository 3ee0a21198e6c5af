import type { Kernel } from '@spf/machine';
import { getVma, type MmStruct, putVma, type VmArea } from '@spf/vma';
import type { DufourChecks } from './dufour-checks.js';

/**
 * Models `find_vma_rcu()` of Dufour's SPF v12 (mm/mmap.c): in a read section of `mm->mm_seq` (the seqlock the
 * series writes around every tree update: @spf/vma's `mm.spfTreeSeq`), walk the tree under `rcu_read_lock()`
 * and take a reference on the VMA found (`get_vma()`: an atomic increment of `vm_ref_count` on the VMA's
 * line) before leaving the RCU section; if a tree update ran meanwhile, drop it and look again. Returns the
 * first VMA ending above `addr` (as `find_vma()`), referenced, or null.
 *
 * The tree walked is `mm.findVmaRcu()`'s: with the handler's `rbtreeLookup` it is Linux 5.1's rbtree, changed
 * in place one store at a time as v12 ran on it (@spf/vma's `VmaRbTree`), where a walk that passes between the
 * stores of a rotation can miss a VMA that stays in the tree throughout and return the next VMA or null:
 * `mm_seq` is what makes the answer right. Without the option it is the substrate's copy-on-write B+tree,
 * published with one store, which a lockless walk never sees half-updated: the loop is then kept for fidelity
 * and for its cost.
 *
 * With `checks.vmaRefcount` off no reference is taken (nothing then keeps the VMA allocated after
 * `rcu_read_unlock()`); with `checks.mmSeqRetry` off the lookup is not repeated, and on the rbtree a wrong
 * answer goes through: the caller then gives up on a VMA without `anon_vma` or not covering the address (a
 * spurious fallback to the classic path, never a wrong mapping; `find-vma-rcu-rbtree.test.ts`).
 */
export function* findVmaRcu(mm: MmStruct, addr: number, checks: DufourChecks): Kernel<VmArea | null> {
  for (;;) {
    const seq = checks.mmSeqRetry ? yield* mm.spfTreeSeq.readBegin() : 0;
    yield* mm.rcu.readLock();
    const vma = yield* mm.findVmaRcu(addr);
    if (vma !== null && checks.vmaRefcount) yield* getVma(vma);
    yield* mm.rcu.readUnlock();
    if (!checks.mmSeqRetry || !(yield* mm.spfTreeSeq.readRetry(seq))) return vma;
    if (vma !== null && checks.vmaRefcount) yield* putVma(vma);
  }
}
