import {
  accessError,
  type ClassicVmFault,
  FAULT_FLAG_ORIG_PTE_VALID,
  handlePteFault,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import {
  findVmaRcu,
  readPageTableEntries,
  type SpeculativeFaultContext,
  type SpeculativeFaultState,
  vmaHasChanged,
} from '@spf/fault-spec';
import { type Kernel, localIrqRestore, localIrqSave, readEffect } from '@spf/machine';
import { PAGE_SIZE, pteNone } from '@spf/pagetable';
import {
  type LockedPte,
  type MmStruct,
  pteLockptr,
  putVma,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_UFFD_MISSING,
  VM_UFFD_WP,
} from '@spf/vma';

// Lab 4: the speculative attempt of Dufour's SPF v12 (handle_speculative_fault and pte_map_lock).

/**
 * pte_map_lock(): lock the PTE table the walk found, without mmap_lock. Interrupts stay off throughout (a
 * TLB-shootdown IPI, and so the freeing of page tables, waits for this CPU). Null means: give up.
 */
function* pteMapLock(s: SpeculativeFaultState, vmf: ClassicVmFault): Kernel<LockedPte | null> {
  const pt = s.mm.pgd;
  const irqs = yield* localIrqSave();
  if (yield* vmaHasChanged(s)) {
    yield* localIrqRestore(irqs);
    return null;
  }
  const pmdval = yield* pt.pmdpGet(vmf.pmd);
  if (pmdval !== vmf.origPmd) {
    yield* localIrqRestore(irqs);
    return null;
  }
  const ptl = pteLockptr(pt, pmdval);
  // spin_trylock(): spinning here, with interrupts off, could wait for a CPU that holds the lock while it
  // waits for this CPU to answer its TLB-flush IPI.
  if (!(yield* ptl.trylock())) {
    yield* localIrqRestore(irqs);
    return null;
  }
  // The re-check after the PTL: from now on munmap, mprotect and mremap wait for this lock.
  if (yield* vmaHasChanged(s)) {
    yield* ptl.unlock();
    yield* localIrqRestore(irqs);
    return null;
  }
  yield* localIrqRestore(irqs);
  return { ptep: s.ptep, ptl };
}

/**
 * handle_speculative_fault(): try the fault without mmap_lock. Returns the handle_mm_fault() result, or
 * VM_FAULT_RETRY to fall back to the classic path.
 */
export function* handleSpeculativeFault(
  ctx: SpeculativeFaultContext,
  mm: MmStruct,
  address: number,
  errorCode: number,
  flags: number,
): Kernel<number> {
  const vma = yield* findVmaRcu(mm, address, ctx.checks);
  if (vma === null) return VM_FAULT_RETRY;
  try {
    const s: SpeculativeFaultState = {
      mm,
      address,
      checks: ctx.checks,
      counters: ctx.counters,
      vma,
      seq: 0,
      pmdp: 0,
      origPmd: 0n,
      ptep: 0,
      origPte: 0n,
    };
    // The sequence snapshot: odd means a writer is changing the VMA right now.
    s.seq = yield* vma.vmSequence.rawReadSeqcount();
    if ((s.seq & 1) !== 0) return VM_FAULT_RETRY;
    yield readEffect(vma.line, 'spf: read vma');
    if (vma.vmOps !== null || vma.vmFile !== null) return VM_FAULT_RETRY;
    if (vma.anonVma === null) return VM_FAULT_RETRY;
    const vmaFlags = vma.vmFlags;
    const vmaPageProt = vma.vmPageProt;
    if ((vmaFlags & (VM_UFFD_MISSING | VM_UFFD_WP | VM_GROWSDOWN | VM_HUGETLB)) !== 0) return VM_FAULT_RETRY;
    if (address < vma.vmStart || address >= vma.vmEnd) return VM_FAULT_RETRY;
    if (accessError(errorCode, vma)) return VM_FAULT_RETRY;

    // The page walk, with interrupts off.
    const irqs = yield* localIrqSave();
    const walked = yield* readPageTableEntries(s);
    yield* localIrqRestore(irqs);
    if (walked !== 'ok') return VM_FAULT_RETRY;
    if (yield* vma.vmSequence.readRetry(s.seq)) return VM_FAULT_RETRY;

    const addr = address - (address % PAGE_SIZE);
    const vmf: ClassicVmFault = {
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
      speculative: { pteMapLock: (f) => pteMapLock(s, f) },
    };
    return yield* handlePteFault(vmf);
  } finally {
    yield* putVma(vma);
  }
}
