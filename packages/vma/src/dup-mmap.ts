import type { Kernel } from '@spf/machine';
import { anonVmaFork } from './anon-vma.js';
import { downWriteNested } from './mm-locks.js';
import { MmStruct } from './mm-struct.js';
import type { PageTableFactory } from './page-table-ops.js';
import { VM_DONTCOPY, VM_LOCKED, VM_LOCKONFAULT, VM_MIXEDMAP, VM_PFNMAP, VM_WIPEONFORK } from './vm-flags.js';
import { vmaStartWrite } from './vma-lock.js';
import { commitVmaChanges, vmAreaDup } from './vma-merge.js';

/**
 * Models `dup_mmap()` in kernel/fork.c: builds the child's address space. Every VMA except VM_DONTCOPY
 * ones is duplicated with its anon_vma chain (`anon_vma_fork`), VM_LOCKED is dropped, and the page
 * tables are copied where needed (`copy_page_range`: private writable pages become copy-on-write in both
 * mms, pages gain a reference and a mapcount). Both mmap locks are held for writing; the parent's TLBs
 * are flushed at the end because its PTEs were write-protected. The child's page tables are built with
 * `pageTables`, or like the parent's (same physical memory and MMU) by default.
 */
export function* dupMmap(oldmm: MmStruct, pageTables?: PageTableFactory): Kernel<MmStruct> {
  yield* oldmm.mmapWriteLock();
  const mm = new MmStruct(oldmm.childConfig(pageTables ?? oldmm.pageTables.forkFactory?.()));
  try {
    yield* downWriteNested(mm.mmapLock);
    yield* mm.mmSeq.writeBegin();
    mm.brk = oldmm.brk;
    mm.startBrk = oldmm.startBrk;
    const children = [];
    for (const mpnt of oldmm.vmas()) {
      // The parent's PTEs are about to be write-protected: keep per-VMA-lock faults out (Linux 6.4+).
      yield* vmaStartWrite(mpnt);
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
    for (const [tmp, mpnt] of children) {
      if (tmp.vmFlags & VM_WIPEONFORK) continue;
      // vma_needs_copy(): only PFN/mixed maps and VMAs with anonymous pages need their PTEs copied.
      if (mpnt.vmFlags & (VM_PFNMAP | VM_MIXEDMAP) || mpnt.anonVma !== null) {
        yield* mm.pageTables.copyPageRange(tmp, mpnt);
      }
    }
    yield* mm.mmapWriteUnlock();
    yield* oldmm.pageTables.flushTlbMm();
  } finally {
    yield* oldmm.mmapWriteUnlock();
  }
  return mm;
}
