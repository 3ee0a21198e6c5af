import type { Kernel } from '@spf/machine';
import { OutOfMemoryError } from '@spf/pagetable';
import { anonVmaFork } from './anon-vma.js';
import { Errno } from './errno.js';
import { downWriteNested } from './mm-locks.js';
import { exitMmap } from './exit-mmap.js';
import { MmStruct } from './mm-struct.js';
import type { PageTableFactory } from './page-table-ops.js';
import type { VmArea } from './vm-area.js';
import { VM_DONTCOPY, VM_LOCKED, VM_LOCKONFAULT, VM_MIXEDMAP, VM_PFNMAP, VM_WIPEONFORK } from './vm-flags.js';
import { vmaStartWrite } from './vma-lock.js';
import { commitVmaChanges, vmAreaDup } from './vma-merge.js';

/**
 * fork ran out of (simulated) memory while building the child's address space: `dup_mmap()` returned
 * -ENOMEM. The partial child has already been torn down and the parent is as before; the kernel's fork
 * turns this into an ENOMEM result for the user program. `errno` is always ENOMEM.
 */
export class ForkOutOfMemoryError extends Error {
  override name = 'ForkOutOfMemoryError';
  readonly errno = Errno.ENOMEM;
  constructor(
    message: string,
    /** The error of the allocation that failed. */
    readonly allocationError: Error,
  ) {
    super(message);
  }
}

/**
 * Whether `e` is a failed allocation of simulated memory (@spf/pagetable's OutOfMemoryError, from the
 * child's top-level table or a page table for copy_page_range). Anything else is a real bug and propagates.
 */
function isOutOfMemory(e: unknown): e is Error {
  return e instanceof OutOfMemoryError;
}

/**
 * Models `dup_mm()` and `dup_mmap()` in kernel/fork.c: builds the child's address space. Every VMA except
 * VM_DONTCOPY ones is duplicated with its anon_vma chain (`anon_vma_fork`), VM_LOCKED is dropped, and the
 * page tables are copied where needed (`copy_page_range`: private writable pages become copy-on-write in
 * both mms, pages gain a reference and a mapcount); VM_WIPEONFORK VMAs get neither an anon_vma nor PTEs,
 * so the child sees zero-filled memory there. Both mmap locks are held for writing; the parent's TLBs
 * are flushed at the end because its PTEs were write-protected. The child's page tables are built with
 * `pageTables`, or like the parent's (same physical memory and MMU) by default.
 *
 * Out of memory (the child's top-level table in `mm_init()`, or a page table for `copy_page_range()`):
 * the partial child is torn down after both mmap locks are released, as `dup_mm()`'s `mmput()` does, by
 * {@link exitMmap} (nothing leaks: every frame, page reference, file reference and page table the child took
 * is released), the parent's TLBs are still flushed (some of its PTEs may have been
 * write-protected; they stay so, as in Linux, and the next write fault reuses the now exclusive page),
 * and {@link ForkOutOfMemoryError} is thrown for the caller to return ENOMEM. Simplification: Linux
 * stops copying at the failing VMA and marks the rest of the child's tree with XA_ZERO_ENTRY; here every
 * VMA is already in the child's tree, and the teardown unmaps them all.
 */
export function* dupMmap(oldmm: MmStruct, pageTables?: PageTableFactory): Kernel<MmStruct> {
  let mm: MmStruct;
  try {
    // mm_init() -> mm_alloc_pgd(), before the parent's lock is taken.
    mm = new MmStruct(oldmm.childConfig(pageTables ?? oldmm.pageTables.forkFactory?.()));
  } catch (e) {
    if (isOutOfMemory(e))
      throw new ForkOutOfMemoryError(`fork: no memory for the page directory of ${oldmm}'s child`, e);
    throw e;
  }
  let failure: Error | null = null;
  yield* oldmm.mmapWriteLock();
  try {
    yield* downWriteNested(mm.mmapLock);
    yield* mm.mmSeq.writeBegin();
    mm.brk = oldmm.brk;
    mm.startBrk = oldmm.startBrk;
    const children: (readonly [VmArea, VmArea])[] = [];
    for (const mpnt of oldmm.vmas()) {
      // The parent's PTEs are about to be write-protected: keep per-VMA-lock faults out (Linux 6.4+).
      yield* vmaStartWrite(mpnt, 'dupMmap');
      if (mpnt.vmFlags & VM_DONTCOPY) continue;
      const tmp = vmAreaDup(mpnt, mm);
      if (tmp.vmFlags & VM_WIPEONFORK) {
        tmp.anonVma = null;
        tmp.anonVmaChain = [];
      } else anonVmaFork(tmp, mpnt);
      tmp.vmFlags &= ~(VM_LOCKED | VM_LOCKONFAULT);
      tmp.vmFile?.get?.();
      tmp.vmOps?.open?.(tmp);
      children.push([tmp, mpnt] as const);
      mm.vmStatAccount(tmp.vmFlags, tmp.pages);
    }
    yield* commitVmaChanges(
      mm,
      [],
      [],
      children.map(([c]) => c),
    );
    try {
      for (const [tmp, mpnt] of children) {
        if (tmp.vmFlags & VM_WIPEONFORK) continue;
        // vma_needs_copy(): only PFN/mixed maps and VMAs with anonymous pages need their PTEs copied.
        if (mpnt.vmFlags & (VM_PFNMAP | VM_MIXEDMAP) || mpnt.anonVma !== null) {
          yield* mm.pageTables.copyPageRange(tmp, mpnt);
        }
      }
    } catch (e) {
      if (!isOutOfMemory(e)) throw e;
      failure = e;
    }
    yield* mm.mmapWriteUnlock();
    yield* oldmm.pageTables.flushTlbMm();
  } finally {
    yield* oldmm.mmapWriteUnlock();
  }
  if (failure !== null) {
    yield* exitMmap(mm);
    throw new ForkOutOfMemoryError(
      `fork: out of memory copying the page tables of ${oldmm} (${failure.message}); the child was torn down`,
      failure,
    );
  }
  return mm;
}
