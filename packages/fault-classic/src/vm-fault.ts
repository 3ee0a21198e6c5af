import type { Kernel } from '@spf/machine';
import type { SpinLock } from '@spf/locks';
import type { Page } from '@spf/pagetable';
import type { MmStruct, VmArea, VmFault } from '@spf/vma';
import type { FaultEnv } from './fault-env.js';
import { FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_TRIED, FAULT_FLAG_VMA_LOCK } from './fault-flags.js';

/**
 * `struct vm_fault` (include/linux/mm.h) as the classic handler fills it: what @spf/vma's `VmFault`
 * hands to `vm_ops`, plus the page-table position and the pages the handler works with. A `vm_ops->fault`
 * receives it typed as VmFault. The page tables are the mm's (`vmf.mm.pgd`).
 */
export interface ClassicVmFault extends VmFault {
  readonly env: FaultEnv;
  readonly mm: MmStruct;
  readonly vma: VmArea;
  /** The faulting address, not page aligned (`vmf->real_address`). */
  readonly realAddress: number;
  /** FAULT_FLAG_* bits; the handler adds ORIG_PTE_VALID. */
  flags: number;
  /** Pointer (physical address) of the PMD entry (`vmf->pmd`). */
  pmd: number;
  /** Pointer of the PTE, or null when there is no PTE table yet or the PTE was none (`vmf->pte`). */
  pte: number | null;
  /** The PTE value read before taking the lock (`vmf->orig_pte`); valid with FAULT_FLAG_ORIG_PTE_VALID. */
  origPte: bigint;
  /** The PTE lock, while held (`vmf->ptl`). */
  ptl: SpinLock | null;
  /** The page a COW fault copies into (`vmf->cow_page`). */
  cowPage: Page | null;
}

/**
 * Models `fault_flag_allow_retry_first()` in include/linux/mm.h: the handler may drop the mmap lock and
 * return VM_FAULT_RETRY (only on the first attempt: a retried fault must finish).
 */
export function faultFlagAllowRetryFirst(flags: number): boolean {
  return (flags & FAULT_FLAG_ALLOW_RETRY) !== 0 && (flags & FAULT_FLAG_TRIED) === 0;
}

/**
 * Models `release_fault_lock()` in include/linux/mm.h: what a `vm_ops->fault` calls before returning
 * VM_FAULT_RETRY (for example to wait for I/O without holding the lock, as `maybe_unlock_mmap_for_io()`
 * does in mm/filemap.c). Drops mmap_lock, or the per-VMA lock for a fault that holds one.
 */
export function* releaseFaultLock(vmf: VmFault): Kernel<void> {
  if ((vmf.flags & FAULT_FLAG_VMA_LOCK) !== 0) {
    yield* vmf.vma.vmLock.upRead();
    return;
  }
  yield* vmf.vma.vmMm.mmapReadUnlock();
}
