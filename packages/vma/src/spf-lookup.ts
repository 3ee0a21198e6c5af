import { type Kernel, readEffect } from '@spf/machine';
import type { MmStruct } from './mm-struct.js';
import type { VmArea } from './vm-area.js';

/** What a speculative reader saw of a VMA, with the vm_sequence value that validates it. */
export type VmaSnapshot = {
  readonly vma: VmArea;
  readonly seq: number;
  readonly vmStart: number;
  readonly vmEnd: number;
  readonly vmFlags: number;
  readonly vmPgoff: number;
  readonly vmPageProt: bigint;
};

/**
 * The lock-free VMA lookup of the speculative page fault (Dufour's `__handle_speculative_fault()` start,
 * mm/memory.c of the SPF series): under rcu_read_lock (which the caller holds), find the VMA in the tree,
 * sample its vm_sequence (giving up if a writer is inside), and copy the fields a fault needs. Returns null
 * when there is no VMA at `addr`, the VMA is being changed, or it has been detached. The caller must call
 * {@link speculativeVmaValidate} before acting on the snapshot and before leaving the RCU section.
 */
export function* speculativeVmaLookup(mm: MmStruct, addr: number): Kernel<VmaSnapshot | null> {
  const vma = yield* mm.findVmaRcu(addr);
  if (vma === null) return null;
  const seq = yield* vma.vmSequence.rawReadSeqcount();
  if (seq & 1) return null;
  yield readEffect(vma.line, 'spf: read vma');
  vma.checkLive('speculative fault');
  if (vma.detached || addr < vma.vmStart || addr >= vma.vmEnd) return null;
  return {
    vma,
    seq,
    vmStart: vma.vmStart,
    vmEnd: vma.vmEnd,
    vmFlags: vma.vmFlags,
    vmPgoff: vma.vmPgoff,
    vmPageProt: vma.vmPageProt,
  };
}

/**
 * `read_seqcount_retry(&vma->vm_sequence, seq)`: true if nothing changed the VMA since the snapshot, so
 * the snapshot still describes it (the check SPF makes after taking the PTE lock).
 */
export function* speculativeVmaValidate(snap: VmaSnapshot): Kernel<boolean> {
  return !(yield* snap.vma.vmSequence.readRetry(snap.seq));
}
