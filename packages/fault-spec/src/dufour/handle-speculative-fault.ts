import {
  accessError,
  type ClassicVmFault,
  FAULT_FLAG_ORIG_PTE_VALID,
  type FaultEnv,
  handlePteFault,
  type SpeculativeFileAbort,
  type SpeculativeFileHooks,
  type SpeculativeFaultHooks,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { call, type Kernel, KernelFault, readEffect } from '@spf/machine';
import { PAGE_SIZE, pteNone } from '@spf/pagetable';
import {
  type LockedPte,
  type MmStruct,
  pgtableAllocUnderPtl,
  putVma,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_UFFD_MISSING,
  VM_UFFD_WP,
  type VmArea,
} from '@spf/vma';
import type { DufourChecks } from './dufour-checks.js';
import { DUFOUR_FILE_ABORT_COUNTERS, type DufourCounters } from './dufour-counters.js';
import { findVmaRcu } from './find-vma-rcu.js';
import { dufourPteMapLock } from './pte-map-lock.js';
import type { SpeculativeFaultState } from './speculative-fault-state.js';
import { speculativeWalk } from './speculative-walk.js';
import { vmaHasChanged } from './vma-has-changed.js';

/** What {@link handleSpeculativeFault} needs from its handler. */
export interface SpeculativeFaultContext {
  readonly env: FaultEnv;
  readonly checks: DufourChecks;
  readonly counters: DufourCounters;
  /** Question 3: allocate missing upper page-table levels under mm->page_table_lock. */
  readonly specPgtableAlloc: boolean;
  /**
   * Question 2, the 2019 proposal: file VMAs are handled speculatively (absent: false, v12 as posted). See
   * {@link DufourSpfOptions.fileVmas}.
   */
  readonly fileVmas?: boolean;
}

/**
 * The file hooks of Dufour's design with `fileVmas` (@spf/fault-classic's `SpeculativeFileHooks`): no section
 * is needed around `->fault` and `->map_pages`, since the reference `get_vma()` took keeps the VMA and, with
 * `vm_file` released in `__free_vma()`, its file; aborts are counted under the `spf_file_*` counters.
 */
function dufourFileHooks(ctx: SpeculativeFaultContext): SpeculativeFileHooks {
  return {
    *fileAccessBegin() {
      return true;
    },
    *fileAccessEnd() {},
    checks: { pageMappingRecheck: ctx.checks.pageMappingRecheck },
    aborted(reason: SpeculativeFileAbort) {
      ctx.counters[DUFOUR_FILE_ABORT_COUNTERS[reason]]++;
    },
  };
}

/**
 * One speculative fault of Dufour's design: its {@link SpeculativeFaultState} and, as the `vm_fault`'s
 * `SpeculativeFaultHooks`, its `pte_map_lock()` ({@link dufourPteMapLock} on this state: a method, so no
 * closure is built per fault) and its file hooks (with `fileVmas`, on a file VMA).
 */
class DufourFault implements SpeculativeFaultState, SpeculativeFaultHooks {
  seq = 0;
  pmdp = 0;
  origPmd = 0n;
  ptep = 0;
  origPte = 0n;
  file: SpeculativeFileHooks | null = null;

  constructor(
    readonly mm: MmStruct,
    readonly address: number,
    readonly checks: DufourChecks,
    readonly counters: DufourCounters,
    public vma: VmArea,
  ) {}

  pteMapLock(vmf: ClassicVmFault): Kernel<LockedPte | null> {
    return dufourPteMapLock(this, vmf);
  }
}

/**
 * Models `handle_speculative_fault()` / `__handle_speculative_fault()` of Dufour's SPF v12 (mm/memory.c),
 * called by the x86 fault entry before it takes mmap_lock, with FAULT_FLAG_SPECULATIVE in `flags`:
 *
 * 1. `find_vma_rcu()` finds and references the VMA ({@link findVmaRcu}); none: give up;
 * 2. snapshot its `vm_sequence` (`vmf->sequence`; odd: a writer is inside, give up);
 * 3. give up for VMAs with `vm_ops->fault` (file and shared mappings: v12 handles anonymous memory only;
 *    with `fileVmas`, the 2019 proposal, a file VMA of a type that allows it goes on, if the mm releases
 *    `vm_file` no earlier than the last VMA reference: switch `vmFileLifetime`), anonymous VMAs without an
 *    `anon_vma` (allocating one needs mmap_lock), userfaultfd, growing stacks and huge pages; copy
 *    `vm_flags` and `vm_page_prot` into the vm_fault; check the address is inside and `access_error()`;
 * 4. the page walk with interrupts off ({@link speculativeWalk}); a missing level ends the attempt, unless
 *    `specPgtableAlloc` (Lespinasse's question 3): then, with interrupts on, take `mm->page_table_lock`,
 *    re-check the VMA under it, install the missing tables, and walk again;
 * 5. re-validate `vm_sequence`, then `handle_pte_fault()` of @spf/fault-classic with the design's
 *    `pte_map_lock()` ({@link dufourPteMapLock}): speculative `do_anonymous_page()`, `do_wp_page()`,
 *    `wp_page_copy()`, and with `fileVmas` the read and private-write file faults of @spf/fault-classic's
 *    `do_fault()` (fault-around, `->fault` on a cached page, `finish_fault()` through `pte_map_lock()`, so a
 *    page is mapped only if `vma_has_changed()` is false under the PTE lock; otherwise it stays in the page
 *    cache, unmapped); everything else returns VM_FAULT_RETRY;
 * 6. `put_vma()`.
 *
 * Returns the `handle_mm_fault()`-style result, VM_FAULT_RETRY when the attempt was abandoned (counted under
 * its reason). Never retries itself and never sleeps.
 *
 * Simplification: v12 answers an `access_error()` found here with SIGSEGV itself; we give up (counting
 * `spf_vma_access`) and let the classic path find the same error and deliver the signal with its si_code.
 */
export function* handleSpeculativeFault(
  ctx: SpeculativeFaultContext,
  mm: MmStruct,
  address: number,
  errorCode: number,
  flags: number,
): Kernel<number> {
  if (mm.spfV12 === null) {
    throw new KernelFault(
      'bug',
      `dufour fault handler: ${mm} was built without MmConfig.spfV12 (SPF v12's mm_seq and vm_rcu_put); build it with the handler's mmConfig, as boot() does`,
    );
  }
  const vma = yield* call(findVmaRcu(mm, address, ctx.checks));
  if (vma === null) {
    ctx.counters.spf_no_vma++;
    return VM_FAULT_RETRY;
  }
  // The checks before handle_pte_fault() are a generator of their own, and both run as calls (the machine's
  // trampoline): their effects reach the machine without resuming this frame.
  try {
    const vmf = yield* call(speculativeVmFault(ctx, mm, vma, address, errorCode, flags));
    if (typeof vmf === 'number') return vmf;
    const before = abortCount(ctx.counters);
    const ret = yield* call(handlePteFault(vmf));
    // A VM_FAULT_RETRY that pte_map_lock did not explain: something handle_pte_fault does not do speculatively.
    if ((ret & VM_FAULT_RETRY) !== 0 && abortCount(ctx.counters) === before) ctx.counters.spf_vma_notsup++;
    if ((vmf.speculative?.file ?? null) !== null && (ret & VM_FAULT_RETRY) === 0)
      ctx.counters.spf_file_handled++;
    return ret;
  } finally {
    if (ctx.checks.vmaRefcount) yield* putVma(vma);
  }
}

/**
 * Steps 2 to 5 of {@link handleSpeculativeFault} on the VMA `find_vma_rcu()` returned, up to the call of
 * `handle_pte_fault()`: the `vm_sequence` snapshot, the VMA checks, the walk and the re-validation. Returns
 * the `vm_fault` to hand to `handle_pte_fault()`, or the result to return instead (VM_FAULT_RETRY, counted
 * under its reason; VM_FAULT_OOM from the page-table allocation of question 3).
 */
function* speculativeVmFault(
  ctx: SpeculativeFaultContext,
  mm: MmStruct,
  vma: VmArea,
  address: number,
  errorCode: number,
  flags: number,
): Kernel<ClassicVmFault | number> {
  const { checks, counters } = ctx;
  const s = new DufourFault(mm, address, checks, counters, vma);
  vma.checkLive('handle_speculative_fault');
  s.seq = yield* vma.vmSequence.rawReadSeqcount();
  if (checks.vmSequenceOdd && (s.seq & 1) !== 0) {
    counters.spf_vma_changed++;
    return VM_FAULT_RETRY;
  }
  yield readEffect(vma.line, 'spf: read vma');
  vma.checkLive('handle_speculative_fault');
  // The 2019 proposal (fileVmas): a file VMA whose file type allows speculation (vm_ops->speculative).
  const file = ctx.fileVmas === true && vma.vmFile !== null && vma.vmOps?.speculative === true;
  if (!file && (vma.vmOps !== null || vma.vmFile !== null)) {
    counters.spf_vma_notsup++;
    return VM_FAULT_RETRY;
  }
  if (file) {
    counters.spf_file_attempt++;
    // vm_file must outlive the reference get_vma() took: released in __free_vma() (or after it).
    if (checks.vmFileLifetime && mm.vmFileRelease === 'removeVma') {
      counters.spf_file_release++;
      return VM_FAULT_RETRY;
    }
  } else if (vma.anonVma === null) {
    counters.spf_vma_noanon++;
    return VM_FAULT_RETRY;
  }
  const vmaFlags = vma.vmFlags;
  const vmaPageProt = vma.vmPageProt;
  if ((vmaFlags & (VM_UFFD_MISSING | VM_UFFD_WP | VM_GROWSDOWN | VM_HUGETLB)) !== 0) {
    counters.spf_vma_notsup++;
    return VM_FAULT_RETRY;
  }
  if (address < vma.vmStart || address >= vma.vmEnd) {
    counters.spf_vma_changed++;
    return VM_FAULT_RETRY;
  }
  // No yield since vmaFlags was read: access_error() sees the same flags (v12 passes vmf->vma_flags).
  if (accessError(errorCode, vma)) {
    counters.spf_vma_access++;
    return VM_FAULT_RETRY;
  }
  let walked = yield* speculativeWalk(s);
  if (walked === 'missing' && ctx.specPgtableAlloc) {
    const r = yield* allocMissingTables(ctx, s);
    if (r !== 0) return r;
    walked = yield* speculativeWalk(s);
  }
  if (walked === 'missing') {
    counters.spf_pgtable_missing++;
    return VM_FAULT_RETRY;
  }
  if (walked === 'huge') {
    counters.spf_vma_notsup++;
    return VM_FAULT_RETRY;
  }
  if (checks.vmSequenceAfterWalk && (yield* vma.vmSequence.readRetry(s.seq))) {
    counters.spf_vma_changed++;
    return VM_FAULT_RETRY;
  }
  if (file) s.file = dufourFileHooks(ctx);
  const addr = address - (address % PAGE_SIZE);
  return {
    env: ctx.env,
    mm,
    vma,
    address: addr,
    realAddress: address,
    pgoff: vma.linearPageIndex(addr),
    flags: flags | FAULT_FLAG_ORIG_PTE_VALID,
    pmd: s.pmdp,
    pte: pteNone(s.origPte) ? null : s.ptep,
    origPte: s.origPte,
    ptl: null,
    cowPage: null,
    vmaFlags,
    vmaPageProt,
    origPmd: s.origPmd,
    speculative: s,
  };
}

/** The counters of the file path's aborts, listed once (not per fault). */
const FILE_ABORT_COUNTERS: readonly (keyof DufourCounters)[] = Object.values(DUFOUR_FILE_ABORT_COUNTERS);

function abortCount(c: DufourCounters): number {
  let n = c.spf_vma_changed + c.spf_pmd_changed + c.spf_pte_lock;
  for (const k of FILE_ABORT_COUNTERS) n += c[k];
  return n;
}

/**
 * Question 3 (Lespinasse's review of v12): allocate the missing page tables of a speculative fault. With
 * interrupts on (a spinning CPU with interrupts off would deadlock with the shootdown of an unmap that holds
 * the lock), take `mm->page_table_lock`, re-check the VMA under it (unmapping frees page tables under the
 * same lock, so an unchanged VMA means none of its tables is being freed), and install what is missing.
 * Returns 0, or VM_FAULT_RETRY when the VMA changed, or VM_FAULT_OOM.
 */
function* allocMissingTables(ctx: SpeculativeFaultContext, s: SpeculativeFaultState): Kernel<number> {
  const mm = s.mm;
  yield* mm.pageTableLock.lock();
  try {
    if (yield* vmaHasChanged(s)) {
      ctx.counters.spf_vma_changed++;
      return VM_FAULT_RETRY;
    }
    const before = ctx.env.vmstat.pgtableAlloc;
    if (!(yield* pgtableAllocUnderPtl(ctx.env, mm, s.address - (s.address % PAGE_SIZE)))) return VM_FAULT_OOM;
    ctx.counters.spf_pgtable_alloc += ctx.env.vmstat.pgtableAlloc - before;
    return 0;
  } finally {
    yield* mm.pageTableLock.unlock();
  }
}
