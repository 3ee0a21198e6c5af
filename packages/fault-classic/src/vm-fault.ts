import type { Kernel } from '@spf/machine';
import type { SpinLock } from '@spf/locks';
import type { Page } from '@spf/pagetable';
import {
  anonVmaPrepare,
  type LockedPte,
  type MmStruct,
  pteOffsetMapLock,
  type VmArea,
  type VmFault,
} from '@spf/vma';
import type { FaultEnv } from './fault-env.js';
import {
  FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_SPECULATIVE,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_VMA_LOCK,
  VM_FAULT_RETRY,
} from './fault-flags.js';

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
  /**
   * `vmf->vma_flags` of the SPF series: the VMA's vm_flags as the fault saw them when it started. Every
   * decision of do_anonymous_page / do_wp_page / wp_page_copy reads this copy, not `vma.vmFlags`, because a
   * speculative fault holds no lock that keeps the VMA from changing (the classic path copies them under
   * mmap_lock, where they cannot change, so the two are the same there).
   */
  readonly vmaFlags: number;
  /** `vmf->vma_page_prot` of the SPF series: the VMA's vm_page_prot when the fault started (see vmaFlags). */
  readonly vmaPageProt: bigint;
  /**
   * `vmf->orig_pmd`: the PMD value a speculative fault's page walk read (what its pte_map_lock compares
   * with `pmd_same()`); 0n on the classic path, which re-reads the PMD under the PTE lock instead.
   */
  origPmd: bigint;
  /**
   * The speculative design running this fault, present exactly when `flags` has FAULT_FLAG_SPECULATIVE:
   * its pte_map_lock. Null on the classic path and under a per-VMA lock.
   */
  readonly speculative: SpeculativeFaultHooks | null;
}

/**
 * What a speculative design (FAULT_FLAG_SPECULATIVE: Dufour's SPF v12, Lespinasse's 2021-22 series) plugs
 * into the fault handlers of mm/memory.c: the SPF series turned every `pte_offset_map_lock()` of
 * do_anonymous_page, do_wp_page, wp_page_copy (and the lock of handle_pte_fault) into `pte_map_lock(vmf)` /
 * `pte_spinlock(vmf)`, which for a speculative fault may fail; the handler then undoes what it did and
 * returns VM_FAULT_RETRY, and the fault is redone under mmap_lock.
 */
export interface SpeculativeFaultHooks {
  /**
   * The design's `pte_map_lock()` (also used where the series calls `pte_spinlock()`: the PTE pointer is
   * the same): lock the PTE table of `vmf.address` below `vmf.pmd` without ever spinning on a lock with
   * interrupts off, and re-validate whatever the design relies on (Dufour: `vma_has_changed()` and
   * `pmd_same()`; Lespinasse: mmap_seq and `pmd_same()`). Returns the locked PTE, or null when the fault must
   * be abandoned (nothing held then).
   */
  pteMapLock(vmf: ClassicVmFault): Kernel<LockedPte | null>;
  /**
   * Present when the design handles file VMAs speculatively (Dufour's design with `fileVmas`, the 2019
   * proposal; Lespinasse's 2021 RFC): what keeps `vma->vm_file` valid around `->fault` and `->map_pages`,
   * the switches of the speculative filemap path, and where its aborts are counted. Absent or null: a file
   * fault gives up (VM_FAULT_RETRY), as SPF v12 and the 2022 series do.
   */
  readonly file?: SpeculativeFileHooks | null;
}

/**
 * Why a speculative file fault gave up (each design counts these under its own names): the page was not in
 * the page cache, or was locked (I/O or truncation in flight), not uptodate, marked PG_readahead (readahead
 * must start, which may sleep), truncated (its `mapping` changed) or past end of file; fault-around did not
 * map the faulting page; a shared write needs `->page_mkwrite`; a private write needs an anon_vma that does
 * not exist yet; the design's file section could not be entered (`fileAccessBegin()` said no).
 */
export type SpeculativeFileAbort =
  | 'pagecache-miss'
  | 'page-locked'
  | 'page-not-uptodate'
  | 'readahead'
  | 'truncated'
  | 'fault-around'
  | 'page-mkwrite'
  | 'anon-vma'
  | 'file-section';

/**
 * The switches of the speculative filemap path (`filemap_fault()` and `filemap_map_pages()` with
 * FAULT_FLAG_SPECULATIVE in Lespinasse's 2021 RFC), each on in the original: a design copies them from its
 * own check table.
 */
export interface SpeculativeFilemapChecks {
  /** After `trylock_page()`, the page must still belong to the file (`page->mapping == mapping`): not truncated. */
  readonly pageMappingRecheck: boolean;
}

/** What a design that runs file faults speculatively plugs in (see {@link SpeculativeFaultHooks.file}). */
export interface SpeculativeFileHooks {
  /**
   * Enter the section in which `vmf.vma.vmFile` may be dereferenced. Lespinasse's RFC: `rcu_read_lock()`
   * and `mmap_seq_read_check()` (the file's fput is RCU-deferred, so the file stays valid while the section
   * lasts if the VMA was still current when it began); Dufour's design with the 2019 proposal: nothing (the
   * VMA reference the fault holds keeps the file, released in `__free_vma()`). False: give up (nothing held;
   * the design counted why).
   */
  fileAccessBegin(vmf: ClassicVmFault): Kernel<boolean>;
  /** Leave that section. */
  fileAccessEnd(vmf: ClassicVmFault): Kernel<void>;
  /** The switches of the speculative filemap path. */
  readonly checks: SpeculativeFilemapChecks;
  /** Counts an abort of the file path under the design's name for it. */
  aborted(reason: SpeculativeFileAbort): void;
}

/** The file hooks of a speculative fault, or null (not speculative, or the design does not speculate on files). */
export function speculativeFileHooks(vmf: VmFault): SpeculativeFileHooks | null {
  if ((vmf.flags & FAULT_FLAG_SPECULATIVE) === 0) return null;
  return (vmf as ClassicVmFault).speculative?.file ?? null;
}

/**
 * Gives up a speculative file fault: counts `reason` with the design and returns VM_FAULT_RETRY (the fault is
 * redone under mmap_lock).
 */
export function speculativeFileAbort(vmf: VmFault, reason: SpeculativeFileAbort): number {
  speculativeFileHooks(vmf)?.aborted(reason);
  return VM_FAULT_RETRY;
}

/** Whether the fault runs speculatively (`vmf->flags & FAULT_FLAG_SPECULATIVE`). */
export function faultIsSpeculative(vmf: ClassicVmFault): boolean {
  return (vmf.flags & FAULT_FLAG_SPECULATIVE) !== 0;
}

/**
 * Models `pte_map_lock()` of the SPF series (mm/memory.c): for a classic fault exactly
 * `pte_offset_map_lock()` (null when the PMD no longer links a PTE table); for a speculative one the
 * design's {@link SpeculativeFaultHooks.pteMapLock}. A null result means: give up this attempt and return
 * {@link vmfLockFailed}.
 */
export function pteMapLock(vmf: ClassicVmFault): Kernel<LockedPte | null> {
  if (vmf.speculative !== null && faultIsSpeculative(vmf)) return vmf.speculative.pteMapLock(vmf);
  return pteOffsetMapLock(vmf.mm.pgd, vmf.pmd, vmf.address);
}

/**
 * What a handler returns when {@link pteMapLock} failed: VM_FAULT_RETRY for a speculative fault (the SPF
 * series: redo it under mmap_lock), 0 for a classic one (the PTE table went away: the access is retried).
 */
export function vmfLockFailed(vmf: ClassicVmFault): number {
  return faultIsSpeculative(vmf) ? VM_FAULT_RETRY : 0;
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
 * does in mm/filemap.c). Drops mmap_lock, or the per-VMA lock for a fault that holds one; a speculative
 * fault (FAULT_FLAG_SPECULATIVE) holds neither and drops nothing.
 */
export function* releaseFaultLock(vmf: VmFault): Kernel<void> {
  if ((vmf.flags & FAULT_FLAG_SPECULATIVE) !== 0) return; // holds neither: nothing to drop
  if ((vmf.flags & FAULT_FLAG_VMA_LOCK) !== 0) {
    yield* vmf.vma.vmLock.upRead();
    return;
  }
  yield* vmf.vma.vmMm.mmapReadUnlock();
}

/**
 * Models `vmf_anon_prepare()` in mm/memory.c (Linux 6.10 and later): a COW (of a file page, or in
 * `do_wp_page()`) needs the VMA's anon_vma. If it has none, `anon_vma_prepare()` may look at neighbouring
 * VMAs, which a fault holding only its VMA's lock must not do without mmap_lock: under a per-VMA lock it
 * tries `mmap_read_trylock()`, prepares the anon_vma under it and goes on (no retry); only if mmap_lock is
 * contended does it drop the VMA lock and return VM_FAULT_RETRY, and the fault is redone under mmap_lock.
 * With `env.vmfAnonPrepareAlwaysRetry` it behaves as Linux 6.7 to 6.9 did, always dropping the VMA lock and
 * retrying. A speculative fault (FAULT_FLAG_SPECULATIVE) gives up (holding no lock, it drops none).
 * Otherwise (mmap_lock held) it prepares the anon_vma and returns 0.
 */
export function* vmfAnonPrepare(vmf: VmFault): Kernel<number> {
  if (vmf.vma.anonVma !== null) return 0;
  // A speculative fault cannot allocate an anon_vma either (the SPF series abort here).
  if ((vmf.flags & FAULT_FLAG_SPECULATIVE) !== 0) return speculativeFileAbort(vmf, 'anon-vma');
  if ((vmf.flags & FAULT_FLAG_VMA_LOCK) !== 0) {
    const mm = vmf.vma.vmMm;
    if ((vmf as ClassicVmFault).env.vmfAnonPrepareAlwaysRetry === true || !(yield* mm.mmapReadTrylock())) {
      yield* releaseFaultLock(vmf);
      return VM_FAULT_RETRY;
    }
    yield* anonVmaPrepare(vmf.vma);
    yield* mm.mmapReadUnlock();
    return 0;
  }
  yield* anonVmaPrepare(vmf.vma);
  return 0;
}
