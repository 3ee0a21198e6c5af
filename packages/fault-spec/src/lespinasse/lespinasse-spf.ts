import {
  accessError,
  type ClassicVmFault,
  doUserAddrFault,
  FAULT_FLAG_ORIG_PTE_VALID,
  FAULT_FLAG_SPECULATIVE,
  FAULT_FLAG_WRITE,
  type FaultEnv,
  type FaultHandler,
  type FaultHandlerFactory,
  type FaultOutcome,
  handlePteFault,
  type LocklessFaultResult,
  mmAccountFault,
  sanitizeFaultFlags,
  type SpeculativeStats,
  type UserFault,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { call, type Kernel, readEffect } from '@spf/machine';
import {
  PAGE_SIZE,
  p4dNone,
  pgdNone,
  pmdNone,
  pteNone,
  ptePresent,
  pteProtnone,
  pteWrite,
  PF_WRITE,
  pudNone,
} from '@spf/pagetable';
import { type MmConfig, pgtableAllocUnderPtl, VM_SHARED, type VmArea } from '@spf/vma';
import {
  LESPINASSE_ABORT_REASONS,
  type LespinasseCounters,
  newLespinasseCounters,
} from './lespinasse-counters.js';
import {
  type LespinasseOptions,
  type ResolvedLespinasseOptions,
  resolveLespinasseOptions,
} from './lespinasse-options.js';
import { LespinasseSpfState } from './lespinasse-state.js';
import { mmapSeqReadCheck, mmapSeqReadStart } from './mmap-seq.js';
import { speculativePageWalkBegin, speculativePageWalkEnd } from './speculative-page-walk.js';
import { vmaCopy } from './vma-copy.js';

/** What the speculative page walk found: the PMD pointer and value, the PTE pointer and value. */
type WalkResult =
  | {
      readonly kind: 'ok';
      readonly pmdp: number;
      readonly pmdval: bigint;
      readonly ptep: number;
      readonly pte: bigint;
    }
  | { readonly kind: 'missing'; readonly level: 'SPF_ABORT_PUD' | 'SPF_ABORT_PMD' };

/**
 * The lockless walk of `__handle_mm_fault()` with FAULT_FLAG_SPECULATIVE in mm/memory.c of the 2022 series,
 * inside one {@link speculativePageWalkBegin} section: read pgd, p4d, pud and pmd once each; give up when a
 * level is missing (a table would have to be allocated: SPF_ABORT_PUD, SPF_ABORT_PMD); then read the PTE
 * (`vmf->orig_pte`). No huge pages exist in this model, so the series' THP and devmap aborts never fire.
 */
function* speculativeWalk(state: LespinasseSpfState, addr: number): Kernel<WalkResult> {
  const { mm } = state;
  const pt = mm.pgd;
  yield* speculativePageWalkBegin(mm, state.walkGuard);
  try {
    // Each entry read is PageTables' inline form (`yield pt.xxxEffect(p)`, then `pt.entry(p)`): the same reads,
    // in the same order, as pgdp_get() ... ptep_get(), without a generator frame each.
    const pgdp = pt.pgdOffset(addr);
    yield pt.pgdpGetEffect(pgdp);
    if (pgdNone(pt.entry(pgdp))) return { kind: 'missing', level: 'SPF_ABORT_PUD' };
    let p4dp = pgdp; // folded into the pgd with 4-level paging
    if (pt.la57) {
      p4dp = yield* pt.p4dOffset(pgdp, addr);
      yield pt.p4dpGetEffect(p4dp);
      if (p4dNone(pt.entry(p4dp))) return { kind: 'missing', level: 'SPF_ABORT_PUD' };
    }
    yield pt.pudOffsetEffect(p4dp);
    const pudp = pt.lowerEntryPointer(pt.entry(p4dp), addr, 3);
    yield pt.pudpGetEffect(pudp);
    if (pudNone(pt.entry(pudp))) return { kind: 'missing', level: 'SPF_ABORT_PUD' };
    yield pt.pmdOffsetEffect(pudp);
    const pmdp = pt.lowerEntryPointer(pt.entry(pudp), addr, 2);
    yield pt.pmdpGetEffect(pmdp);
    const pmdval = pt.entry(pmdp);
    if (pmdNone(pmdval)) return { kind: 'missing', level: 'SPF_ABORT_PMD' };
    // pte_offset_map() on the PMD value just read (vmf.orig_pmd), not on a second read of the entry: a
    // concurrent free_pgtables() may clear the PMD now, but the table itself stays until the walk ends.
    const ptep = pt.lowerEntryPointer(pmdval, addr, 1);
    yield pt.ptepGetEffect(ptep);
    const pte = pt.entry(ptep);
    return { kind: 'ok', pmdp, pmdval, ptep, pte };
  } finally {
    yield* speculativePageWalkEnd(mm, state.walkGuard);
  }
}

/**
 * Models `do_handle_mm_fault()` / `__handle_mm_fault()` with FAULT_FLAG_SPECULATIVE (mm/memory.c of the 2022
 * series) on the on-stack VMA copy: the speculative walk ({@link speculativeWalk}), then `handle_pte_fault()`
 * of @spf/fault-classic with the walk's `pmd`, `orig_pmd`, `pte` and `orig_pte` filled in and this design's
 * `__pte_map_lock()` as the PTE lock. Returns the handle_mm_fault bits, VM_FAULT_RETRY meaning "abort".
 *
 * The series aborts in `do_anonymous_page()` and `wp_page_copy()` when the VMA has no anon_vma yet (it would
 * have to be allocated, which needs mmap_lock). @spf/fault-classic's speculative handlers expect the design to
 * have decided that before (SPF_ABORT_ANON_VMA), so the same two cases are checked here from the PTE the walk
 * read: a fault that will allocate an anonymous page (a write, or a read without the zero page, to a none PTE;
 * a write to a present read-only PTE) on a VMA without anon_vma aborts. A read mapping the zero page goes on,
 * as in the series.
 *
 * With `specPgtableAlloc` (question 3), a missing level is installed by @spf/vma's `pgtableAllocUnderPtl()`
 * under `mm->page_table_lock` after an mmap_seq re-check under that lock, and the walk is done once more.
 *
 * Returns the `vm_fault` to hand to `handle_pte_fault()` (the caller calls it, from a smaller generator
 * frame than this one: every effect of the rest of the fault passes through that frame), or VM_FAULT_RETRY
 * when the fault gives up before it.
 */
function* doHandleMmFaultSpeculative(
  handler: LespinasseSpfHandler,
  state: LespinasseSpfState,
  vma: VmArea,
  address: number,
  flags: number,
): Kernel<ClassicVmFault | number> {
  const { env, mm, counters } = state;
  const addr = address - (address % PAGE_SIZE);
  let walk = yield* call(speculativeWalk(state, addr));
  if (walk.kind === 'missing' && handler.options.specPgtableAlloc) {
    // Under page_table_lock, which munmap holds while it frees tables (freePgtablesUnderPtl): if mmap_seq is
    // unchanged no free has happened since the snapshot, and none can start before the lock is dropped.
    yield* mm.pageTableLock.lock();
    let r: 'ok' | 'changed' | 'oom' = 'changed';
    if (yield* mmapSeqReadCheck(mm, state.seq))
      r = (yield* pgtableAllocUnderPtl(env, mm, addr)) ? 'ok' : 'oom';
    yield* mm.pageTableLock.unlock();
    if (r !== 'ok') {
      counters.spf_abort_pgtable_alloc++;
      return VM_FAULT_RETRY;
    }
    counters.spf_pgtable_alloc++;
    walk = yield* speculativeWalk(state, addr);
  }
  if (walk.kind === 'missing') {
    counters[walk.level]++;
    return VM_FAULT_RETRY;
  }
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const none = pteNone(walk.pte);
  if (!none && !ptePresent(walk.pte)) {
    counters.SPF_ABORT_SWAP++; // do_swap_page(): a swap entry (none exist in this model)
    return VM_FAULT_RETRY;
  }
  if (!none && pteProtnone(walk.pte)) {
    counters.SPF_ABORT_FAULT++; // do_numa_page(): NUMA hinting is not modelled
    return VM_FAULT_RETRY;
  }
  const anon = vma.isAnonymous();
  if (none) counters[anon ? 'SPF_ATTEMPT_ANON' : 'SPF_ATTEMPT_FILE']++;
  else {
    counters.SPF_ATTEMPT_PTE++;
    if (write && !pteWrite(walk.pte)) counters.SPF_ATTEMPT_WP++;
  }
  // Counted after the SPF_ATTEMPT_* event, as the series counts it inside do_anonymous_page / wp_page_copy.
  // (A file VMA's private write to a none PTE finds it in do_cow_fault(): vmf_anon_prepare() aborts there.)
  if (vma.anonVma === null && (anon && none ? write || !env.useZeroPage : write && !none)) {
    counters.SPF_ABORT_ANON_VMA++;
    return VM_FAULT_RETRY;
  }
  return {
    env,
    mm,
    vma,
    address: addr,
    realAddress: address,
    pgoff: vma.linearPageIndex(addr),
    flags: none ? flags : flags | FAULT_FLAG_ORIG_PTE_VALID,
    pmd: walk.pmdp,
    pte: none ? null : walk.ptep,
    origPte: walk.pte,
    ptl: null,
    cowPage: null,
    vmaFlags: vma.vmFlags,
    vmaPageProt: vma.vmPageProt,
    origPmd: walk.pmdval,
    speculative: state,
  };
}

/**
 * Counts an abort (and its reason, unless `__pte_map_lock()` or the file path counted it) and falls back to
 * mmap_lock.
 */
function abort(
  counters: LespinasseCounters,
  reason: keyof LespinasseCounters | null,
  flags: number,
  fileVma = false,
): LocklessFaultResult {
  if (reason !== null) counters[reason]++;
  counters.spf_abort++;
  if (fileVma) counters.spf_file_abort++;
  return { kind: 'fallback', flags };
}

/**
 * Models `vma_can_speculate()` of the 2021 RFC (include/linux/mm.h, "mm: enable speculative fault handling
 * for supported file types") for a VMA that is not anonymous: only with `fileVmas`, on a file whose `vm_ops`
 * allow speculation, and not for a write to a shared mapping (no speculative `->page_mkwrite`). Ours on top:
 * the mm must defer `fput(vm_file)` past a grace period (the RFC's "mm: rcu safe vma->vm_file freeing", our
 * `vmFileRelease: 'rcu'`; switch `vmFileLifetime`). Returns null when the fault may go on, else the abort
 * reason.
 */
function vmaCanSpeculateFile(
  handler: LespinasseSpfHandler,
  vma: VmArea,
  errorCode: number,
): keyof LespinasseCounters | null {
  const { fileVmas, checks } = handler.options;
  if (!fileVmas || vma.vmFile === null || vma.vmOps?.speculative !== true) return 'SPF_ABORT_NO_SPECULATE';
  if ((errorCode & PF_WRITE) !== 0 && (vma.vmFlags & VM_SHARED) !== 0) return 'SPF_ABORT_FILE_MKWRITE';
  if (checks.vmFileLifetime && vma.vmMm.vmFileRelease !== 'rcu') return 'SPF_ABORT_FILE_RELEASE';
  return null;
}

/**
 * Models the speculative block of `do_user_addr_fault()` in arch/x86/mm/fault.c of the 2022 series, run
 * before mmap_lock is taken (@spf/fault-classic's lockless hook):
 *
 * 1. count `spf_attempt`; `mmap_seq_read_start()`: an odd sequence (a writer holds mmap_lock) aborts
 *    (SPF_ABORT_ODD);
 * 2. under rcu_read_lock, find the VMA (SPF_ABORT_UNMAPPED when none covers the address: stack expansion
 *    needs mmap_lock) and give up on non-anonymous ones (SPF_ABORT_NO_SPECULATE) unless `fileVmas` lets a
 *    file VMA through; copy it to the stack
 *    ({@link vmaCopy}); leave the RCU section;
 * 3. `mmap_seq_read_check()`: the copy is consistent with the tree only if no writer came in meanwhile
 *    (SPF_ABORT_VMA_COPY); `access_error()` on the copy aborts too (SPF_ABORT_ACCESS_ERROR: the classic path
 *    sends the signal);
 * 4. `do_handle_mm_fault(&pvma, ..., FAULT_FLAG_SPECULATIVE, seq)` ({@link doHandleMmFaultSpeculative});
 *    anything but VM_FAULT_RETRY finishes the fault (accounted as `handle_mm_fault()` does); VM_FAULT_RETRY
 *    counts `spf_abort` and falls back to the classic path under mmap_lock, with the same flags.
 *
 * With `fileVmas` (the 2021 RFC), step 2 also lets through a file VMA `vma_can_speculate()` accepts
 * ({@link vmaCanSpeculateFile}); the rest of the file fault is @spf/fault-classic's and @spf/file-backed's
 * speculative paths, with this fault's state as the file hooks (RCU section, mmap_seq check).
 *
 * Simplifications: the series' swap cases are not modelled; no signal check after an abort (nothing in the
 * speculative path waits).
 */
function* lespinasseAttempt(
  handler: LespinasseSpfHandler,
  fault: UserFault,
  flags: number,
): Kernel<LocklessFaultResult> {
  const vmf = yield* call(lespinasseVmFault(handler, fault, flags));
  if ('kind' in vmf) return vmf;
  // Every VM_FAULT_RETRY out of handle_pte_fault() was counted by __pte_map_lock (the only way the
  // speculative handlers of an anonymous VMA give up once the cases doHandleMmFaultSpeculative checks are
  // excluded) or by the file path.
  const ret = yield* call(handlePteFault(vmf));
  return lespinasseFinish(handler, fault, flags, (vmf.speculative?.file ?? null) !== null, ret);
}

/**
 * The end of the speculative block: VM_FAULT_RETRY counts `spf_abort` and falls back to mmap_lock with the
 * same flags; anything else finishes the fault, accounted as `handle_mm_fault()` does.
 */
function lespinasseFinish(
  handler: LespinasseSpfHandler,
  fault: UserFault,
  flags: number,
  fileVma: boolean,
  ret: number,
): LocklessFaultResult {
  if ((ret & VM_FAULT_RETRY) !== 0) return abort(handler.counters, null, flags, fileVma);
  mmAccountFault(handler.env, fault.task, flags | FAULT_FLAG_SPECULATIVE, ret);
  return { kind: 'done', ret };
}

/**
 * Steps 1 to 3 of {@link lespinasseAttempt} and step 4 up to `handle_pte_fault()`: returns the `vm_fault`
 * to hand to it, or the attempt's result when it ended before (an abort, counted; or the result of
 * `sanitize_fault_flags()`).
 */
function* lespinasseVmFault(
  handler: LespinasseSpfHandler,
  fault: UserFault,
  flags: number,
): Kernel<ClassicVmFault | LocklessFaultResult> {
  const { env, options, counters } = handler;
  const { mm, address } = fault;
  if (options.singleThreadShortcut) {
    yield readEffect(mm.mmUsers.line, 'mm_users == 1');
    if (mm.mmUsers.value === 1) return { kind: 'fallback', flags };
  }
  counters.spf_attempt++;
  const { checks } = options;
  const seq = yield* mmapSeqReadStart(mm);
  if (checks.mmapSeqCheck && (seq & 1) !== 0) return abort(counters, 'SPF_ABORT_ODD', flags);
  if (checks.rcuFreeVma) yield* mm.rcu.readLock();
  let copy: VmArea | null = null;
  let reason: keyof LespinasseCounters | null = null;
  let fileVma = false;
  try {
    const vma = yield* mm.findVmaRcu(address);
    if (vma === null) reason = 'SPF_ABORT_UNMAPPED';
    else {
      yield readEffect(vma.line, 'vma->vm_start, vm_ops');
      vma.checkLive('speculative fault: find_vma under RCU');
      if (vma.vmStart > address) reason = 'SPF_ABORT_UNMAPPED';
      else if (vma.isAnonymous()) copy = yield* vmaCopy(vma);
      else {
        reason = vmaCanSpeculateFile(handler, vma, fault.errorCode);
        fileVma = reason === null || reason !== 'SPF_ABORT_NO_SPECULATE';
        if (fileVma) counters.spf_file_attempt++;
        if (reason === null) copy = yield* vmaCopy(vma);
      }
    }
  } finally {
    if (checks.rcuFreeVma) yield* mm.rcu.readUnlock();
  }
  if (copy === null) return abort(counters, reason, flags, fileVma);
  if (!(yield* mmapSeqReadCheck(mm, seq))) return abort(counters, 'SPF_ABORT_VMA_COPY', flags, fileVma);
  if (accessError(fault.errorCode, copy)) return abort(counters, 'SPF_ABORT_ACCESS_ERROR', flags, fileVma);
  const specFlags = flags | FAULT_FLAG_SPECULATIVE;
  const state = new LespinasseSpfState(
    env,
    mm,
    seq,
    checks.speculativePageWalk ? options.pageWalk : null,
    checks,
    counters,
    fileVma,
  );
  const ret = sanitizeFaultFlags(copy, specFlags);
  if (ret !== 0) return lespinasseFinish(handler, fault, flags, fileVma, ret);
  const vmf = yield* call(doHandleMmFaultSpeculative(handler, state, copy, address, specFlags));
  if (typeof vmf !== 'number') return vmf;
  return lespinasseFinish(handler, fault, flags, fileVma, vmf);
}

/**
 * Lespinasse's speculative page fault (Michel Lespinasse, "[PATCH v2 00/35] Speculative page faults",
 * January 2022) as a @spf/fault-classic `FaultHandler`: every user fault first tries the speculative path
 * (no mmap_lock, no VMA reference: a per-mm sequence count, an on-stack VMA copy and RCU-freed VMAs), and
 * falls back to `do_user_addr_fault()`'s classic path under mmap_lock when it aborts. File VMAs (`fileVmas`,
 * on by default) follow the April 2021 RFC ("[RFC PATCH 00/37] Speculative page faults", patches 23-32),
 * which the 2022 series left out.
 */
export class LespinasseSpfHandler implements FaultHandler {
  readonly name = 'lespinasse';
  /** The series' events: spf_attempt, spf_abort, the SPF_ABORT_* reasons and SPF_ATTEMPT_* paths. */
  readonly counters: LespinasseCounters = newLespinasseCounters();
  private readonly attempt = (fault: UserFault, flags: number): Kernel<LocklessFaultResult> =>
    lespinasseAttempt(this, fault, flags);
  /**
   * With `fileVmas` (and its `vmFileLifetime` check), every mm defers `fput(vm_file)` past an RCU grace period
   * (the RFC's "mm: rcu safe vma->vm_file freeing"); `boot()` applies it unless the boot names its own.
   */
  readonly mmConfig: Readonly<Pick<MmConfig, 'vmFileRelease'>>;

  constructor(
    readonly env: FaultEnv,
    readonly options: ResolvedLespinasseOptions,
  ) {
    this.mmConfig = options.fileVmas && options.checks.vmFileLifetime ? { vmFileRelease: 'rcu' } : {};
  }

  speculativeStats(): SpeculativeStats {
    const c = this.counters;
    const aborts: Record<string, number> = {};
    for (const r of LESPINASSE_ABORT_REASONS) aborts[r] = c[r];
    aborts.spf_abort_pgtable_alloc = c.spf_abort_pgtable_alloc;
    return { attempts: c.spf_attempt, handled: c.spf_attempt - c.spf_abort, aborts };
  }

  handleUserFault(fault: UserFault): Kernel<FaultOutcome> {
    return doUserAddrFault(this.env, fault, this.attempt);
  }
}

/**
 * The factory `boot({ faultHandler: lespinasseSpf(options) })` of @spf/kernel takes. Options are checked when
 * the system boots, against how it frees page tables; unsafe or contradictory ones throw
 * {@link FaultSpecConfigError} (see {@link LespinasseOptions}).
 */
export function lespinasseSpf(options: LespinasseOptions = {}): FaultHandlerFactory {
  return (env) => new LespinasseSpfHandler(env, resolveLespinasseOptions(env, options));
}
