import { call, type Kernel } from '@spf/machine';
import type { SpinLock } from '@spf/locks';
import {
  PAGE_SIZE,
  pmdNone,
  pteMkdirty,
  pteMkyoung,
  pteNone,
  ptePresent,
  pteProtnone,
  pteWrite,
} from '@spf/pagetable';
import {
  type MmStruct,
  p4dAlloc,
  pmdAlloc,
  pteLockptr,
  pudAlloc,
  VM_ACCESS_FLAGS,
  VM_MAYWRITE,
  VM_WRITE,
  type VmArea,
} from '@spf/vma';
import { doFault, faultOps } from './do-fault.js';
import type { TaskFaultCounters } from './fault-counters.js';
import type { FaultEnv } from './fault-env.js';
import {
  FAULT_FLAG_ORIG_PTE_VALID,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_MAJOR,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags.js';
import { builtinPteFaultPaths } from './pte-fault-paths.js';
import { type ClassicVmFault, faultIsSpeculative, pteMapLock } from './vm-fault.js';

/**
 * Models `handle_pte_fault()` in mm/memory.c: the PTE-level dispatch.
 *
 * The PTE is first read without the lock. None: the page was never mapped, so `do_anonymous_page()` or
 * `do_fault()` maps it. Not present: a swap entry (`do_swap_page()`, not modelled: SIGBUS). PROT_NONE on an
 * accessible VMA: a NUMA hinting fault (not modelled: SIGBUS). Otherwise the PTE is present: under the PTE
 * lock, if it is unchanged, a write to a write-protected PTE goes to `do_wp_page()`; anything else (another
 * CPU already fixed it, or only the accessed/dirty bits were missing) just updates A/D and returns.
 *
 * A speculative fault (FAULT_FLAG_SPECULATIVE, the SPF series' version) arrives with `vmf.pte`,
 * `vmf.origPte` and `vmf.origPmd` already read by the design's page walk (with interrupts off or under RCU):
 * re-reading the PMD here, with nothing that keeps the tables alive, would not be safe. It handles only what
 * the series handles speculatively (anonymous first touch, write-protect faults, A/D updates; file faults
 * only with a design's file hooks, `SpeculativeFaultHooks.file`, on a file type whose `vm_ops` say
 * `speculative`); a swap entry or a NUMA hinting PTE returns VM_FAULT_RETRY, and the PTE lock is taken through the
 * design's `pte_spinlock()` ({@link pteMapLock}), which may fail with VM_FAULT_RETRY as well.
 *
 * `do_anonymous_page()` and `do_wp_page()` are the environment's `pteFaultPaths` when it has some (an
 * injection point, see {@link withPteFaultPaths}), else this package's.
 */
export function* handlePteFault(vmf: ClassicVmFault): Kernel<number> {
  const pt = vmf.mm.pgd;
  const speculative = faultIsSpeculative(vmf);
  let ptep: number | null = vmf.pte;
  let pmdval = vmf.origPmd;
  if (!speculative) {
    // pmdp_get(), pte_offset_map() and ptep_get() in PageTables' inline forms (no generator frame each).
    yield pt.pmdpGetEffect(vmf.pmd);
    pmdval = pt.entry(vmf.pmd);
    ptep = null;
    if (pmdNone(pmdval)) {
      vmf.flags &= ~FAULT_FLAG_ORIG_PTE_VALID;
    } else {
      yield pt.pteOffsetMapEffect(vmf.pmd);
      ptep = pt.pteOffsetIn(pt.entry(vmf.pmd), vmf.address);
      if (ptep === null) return 0;
      yield pt.ptepGetEffect(ptep);
      vmf.origPte = pt.entry(ptep);
      vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID;
      if (pteNone(vmf.origPte)) ptep = null;
    }
    vmf.pte = ptep;
  }
  if (ptep === null) {
    // do_pte_missing()
    const ops = faultOps(vmf.vma);
    if (ops === null)
      return yield* call((vmf.env.pteFaultPaths ?? builtinPteFaultPaths).doAnonymousPage(vmf));
    // A speculative file fault goes on only if the design handles file VMAs (its file hooks) and the
    // file type allows it (`vm_ops->speculative`, Lespinasse's 2021 RFC).
    if (speculative && (vmf.speculative?.file == null || ops.speculative !== true)) return VM_FAULT_RETRY;
    return yield* call(doFault(vmf, ops));
  }
  if (!ptePresent(vmf.origPte)) return speculative ? VM_FAULT_RETRY : VM_FAULT_SIGBUS; // do_swap_page(): no swap in this model
  if (pteProtnone(vmf.origPte) && (vmf.vmaFlags & VM_ACCESS_FLAGS) !== 0) {
    return speculative ? VM_FAULT_RETRY : VM_FAULT_SIGBUS; // do_numa_page()
  }
  let ptl: SpinLock;
  if (speculative) {
    const locked = yield* pteMapLock(vmf);
    if (locked === null) return VM_FAULT_RETRY;
    ptl = locked.ptl;
    ptep = locked.ptep;
    vmf.pte = ptep;
  } else {
    ptl = pteLockptr(pt, pmdval);
    yield* ptl.lock();
  }
  vmf.ptl = ptl;
  let entry = vmf.origPte;
  const cur = yield* pt.ptepGet(ptep);
  if (cur !== entry) {
    vmf.ptl = null;
    yield* ptl.unlock();
    return 0;
  }
  if ((vmf.flags & FAULT_FLAG_WRITE) !== 0) {
    if (!pteWrite(entry)) return yield* (vmf.env.pteFaultPaths ?? builtinPteFaultPaths).doWpPage(vmf);
    entry = pteMkdirty(entry);
  }
  entry = pteMkyoung(entry);
  // If nothing changed the fault was spurious (another CPU fixed the PTE first); Linux then calls
  // flush_tlb_fix_spurious_fault(), a no-op on x86, so there is nothing more to do either way.
  yield* pt.ptepSetAccessFlags(vmf.address, ptep, entry, (vmf.flags & FAULT_FLAG_WRITE) !== 0);
  vmf.ptl = null;
  yield* ptl.unlock();
  return 0;
}

/**
 * Models `__handle_mm_fault()` in mm/memory.c: walk down from the pgd, allocating the p4d, pud and pmd
 * tables that are missing (under `mm->page_table_lock`, re-checking under the lock), then handle the fault
 * at the PTE level. Transparent huge pages are not modelled (every fault maps 4 KiB).
 */
export function* handleMmFaultLocked(
  env: FaultEnv,
  mm: MmStruct,
  vma: VmArea,
  address: number,
  flags: number,
): Kernel<number> {
  const addr = address - (address % PAGE_SIZE);
  const pgdp = mm.pgd.pgdOffset(addr);
  // With 4-level paging the p4d level is folded into the pgd (p4d_alloc() returns the pgd pointer): no frame.
  const p4dp = mm.pgd.la57 ? yield* p4dAlloc(env, mm, pgdp, addr) : pgdp;
  if (p4dp === null) return VM_FAULT_OOM;
  const pudp = yield* pudAlloc(env, mm, p4dp, addr);
  if (pudp === null) return VM_FAULT_OOM;
  const pmdp = yield* pmdAlloc(env, mm, pudp, addr);
  if (pmdp === null) return VM_FAULT_OOM;
  const vmf: ClassicVmFault = {
    env,
    mm,
    vma,
    address: addr,
    realAddress: address,
    pgoff: vma.linearPageIndex(addr),
    flags,
    pmd: pmdp,
    pte: null,
    origPte: 0n,
    ptl: null,
    cowPage: null,
    vmaFlags: vma.vmFlags,
    vmaPageProt: vma.vmPageProt,
    origPmd: 0n,
    speculative: null,
  };
  return yield* call(handlePteFault(vmf));
}

/**
 * Models `sanitize_fault_flags()` in mm/memory.c: a write fault on a VMA that can never be written, or a
 * forced write to a shared read-only mapping, is a bug of the caller and gets SIGSEGV.
 */
export function sanitizeFaultFlags(vma: VmArea, flags: number): number {
  if ((flags & FAULT_FLAG_WRITE) !== 0) {
    if ((vma.vmFlags & VM_MAYWRITE) === 0) return VM_FAULT_SIGSEGV;
    if ((vma.vmFlags & VM_WRITE) === 0 && !vma.isCowMapping()) return VM_FAULT_SIGSEGV;
  }
  return 0;
}

/**
 * Models `mm_account_fault()` in mm/memory.c: a retried fault is counted when it completes; every other
 * fault counts in `pgfault`, even a failed one; a successful fault counts as major when it did I/O
 * (VM_FAULT_MAJOR) or had been retried (FAULT_FLAG_TRIED), else minor, in the task's counters.
 * Simplification: `pgmajfault` is counted here for major faults (Linux counts it where the I/O happens,
 * in `filemap_fault()` and `do_swap_page()`).
 */
export function mmAccountFault(
  env: FaultEnv,
  task: TaskFaultCounters | null,
  flags: number,
  ret: number,
): void {
  if ((ret & VM_FAULT_RETRY) !== 0) return;
  env.vmstat.pgfault++;
  if ((ret & VM_FAULT_ERROR) !== 0) return;
  const major = (ret & VM_FAULT_MAJOR) !== 0 || (flags & FAULT_FLAG_TRIED) !== 0;
  if (major) {
    env.vmstat.pgmajfault++;
    if (task !== null) task.majflt++;
  } else if (task !== null) {
    task.minflt++;
  }
}

/**
 * Models `handle_mm_fault()` in mm/memory.c: check the flags, handle the fault, and account it
 * ({@link mmAccountFault}, or the environment's `userFaultPaths.mmAccountFault` when injected). Called with the mmap lock held for reading; returns with it still held unless
 * the result has VM_FAULT_RETRY or VM_FAULT_COMPLETED (then the handler released it).
 */
export function* handleMmFault(
  env: FaultEnv,
  mm: MmStruct,
  vma: VmArea,
  address: number,
  flags: number,
  task: TaskFaultCounters | null,
): Kernel<number> {
  let ret = sanitizeFaultFlags(vma, flags);
  if (ret === 0) ret = yield* handleMmFaultLocked(env, mm, vma, address, flags);
  (env.userFaultPaths?.mmAccountFault ?? mmAccountFault)(env, task, flags, ret);
  return ret;
}
