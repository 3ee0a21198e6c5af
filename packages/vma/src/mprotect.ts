import type { Kernel } from '@spf/machine';
import { Errno, fail, ok, type SysResult } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { securityVmEnoughMemoryMm } from './overcommit.js';
import { MmuGather } from './page-table-ops.js';
import { validArg } from './munmap.js';
import {
  calcVmProtBits,
  PAGE_SIZE,
  pageAlign,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_NORESERVE,
  VM_SHARED,
  VM_WRITE,
} from './vm-flags.js';
import type { VmArea } from './vm-area.js';
import { vmFlagsReset } from './vm-flags-reset.js';
import { vmaModifyFlags } from './vma-merge.js';

/**
 * Models `mprotect_fixup()` in mm/mprotect.c: gives [start, end) of `vma` the flags `newFlags`, merging or
 * splitting as Linux does, then rewrites the PTEs (change_protection) and flushes TLBs. Returns the VMA
 * that covers the range afterwards, or an errno.
 */
export function* mprotectFixup(
  mm: MmStruct,
  vma: VmArea,
  prev: VmArea | null,
  start: number,
  end: number,
  newFlags: number,
): Kernel<VmArea | number> {
  const oldFlags = vma.vmFlags;
  if (newFlags === oldFlags) return vma;
  const nrpages = (end - start) / PAGE_SIZE;
  if (newFlags & VM_WRITE) {
    // Private memory turning writable is charged now (security_vm_enough_memory_mm()), before any change.
    if (!(oldFlags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))) {
      if (!securityVmEnoughMemoryMm(mm, nrpages)) return Errno.ENOMEM;
      newFlags |= VM_ACCOUNT;
    }
  } else if (oldFlags & VM_ACCOUNT && vma.isAnonymous() && vma.anonVma === null) {
    newFlags &= ~VM_ACCOUNT;
  }
  const r = yield* vmaModifyFlags(mm, prev, vma, start, end, newFlags);
  if (typeof r === 'number') return r;
  const target = r;
  // vm_flags_reset_once() + vma_set_page_prot(), then change_protection() and its TLB flush, all inside
  // the VMA's vm_sequence write section as SPF v12 has it: a speculative fault that sampled the sequence
  // before must not install a PTE with the old protection behind change_protection().
  yield* vmFlagsReset(target, newFlags, true, 'mprotect', function* () {
    const tlb = new MmuGather();
    yield* mm.pageTables.changeProtection(tlb, target, start, end, target.vmPageProt);
    yield* mm.pageTables.tlbFinishMmu(tlb, start, end);
  });
  if (oldFlags & VM_ACCOUNT && !(newFlags & VM_ACCOUNT)) mm.committed -= nrpages;
  if (!(oldFlags & VM_ACCOUNT) && newFlags & VM_ACCOUNT) mm.committed += nrpages;
  mm.vmStatAccount(oldFlags & ~VM_ACCOUNT, -nrpages);
  mm.vmStatAccount(newFlags & ~VM_ACCOUNT, nrpages);
  return target;
}

/**
 * Models `do_mprotect_pkey()` in mm/mprotect.c (without protection keys). Like Linux, a request that
 * covers a hole, or meets a VMA whose VM_MAY* bits forbid the new protection, is applied to the VMAs before
 * that point and then fails (ENOMEM / EACCES); failures found before the first VMA change nothing.
 * The caller holds the mmap lock for writing.
 */
export function* doMprotect(mm: MmStruct, start: number, len: number, prot: number): Kernel<SysResult<0>> {
  if (!validArg(start) || !validArg(len) || !Number.isSafeInteger(prot)) return fail(Errno.EINVAL);
  // prot is an unsigned long: bits 63:32 (and a negative value's sign bits) exist in Linux but not in a
  // 32-bit JavaScript bitwise operation, so they are kept aside for arch_validate_prot() below.
  const highProtBits = prot < 0 || prot >= 2 ** 32;
  prot >>>= 0;
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return fail(Errno.EINVAL);
  if (start % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
  if (!len) return ok(0);
  len = pageAlign(len);
  const end = start + len;
  if (end <= start) return fail(Errno.ENOMEM);
  // arch_validate_prot(): only r/w/x and PROT_SEM.
  if (highProtBits || prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return fail(Errno.EINVAL);
  let vma = mm.findVma(start);
  if (vma === null || vma.vmStart >= end) return fail(Errno.ENOMEM);
  if (grows & PROT_GROWSDOWN) {
    start = vma.vmStart;
    if (!(vma.vmFlags & VM_GROWSDOWN)) return fail(Errno.EINVAL);
  } else {
    if (vma.vmStart > start) return fail(Errno.ENOMEM);
    // PROT_GROWSUP needs a VM_GROWSUP VMA, which x86 does not have.
    if (grows & PROT_GROWSUP) return fail(Errno.EINVAL);
  }
  let prev: VmArea | null = start > vma.vmStart ? vma : mm.findVmaPrev(vma.vmStart);
  let tmp = vma.vmStart;
  let nstart = start;
  let error = 0;
  while (vma !== null && vma.vmStart < end) {
    if (vma.vmStart !== tmp) {
      error = Errno.ENOMEM;
      break;
    }
    const newFlags = calcVmProtBits(prot) | (vma.vmFlags & ~VM_ACCESS_FLAGS);
    // newflags >> 4 puts VM_MAY* in place of VM_*: a new right needs its VM_MAY* bit.
    if (newFlags & ~(newFlags >> 4) & VM_ACCESS_FLAGS) {
      error = Errno.EACCES;
      break;
    }
    tmp = Math.min(vma.vmEnd, end);
    const r = yield* mprotectFixup(mm, vma, prev, nstart, tmp, newFlags);
    if (typeof r === 'number') {
      error = r;
      break;
    }
    prev = r;
    tmp = r.vmEnd;
    nstart = tmp;
    vma = mm.findVma(tmp);
    if (tmp >= end) break;
  }
  if (!error && tmp < end) error = Errno.ENOMEM;
  return error ? fail(error as typeof Errno.ENOMEM) : ok(0);
}

/** Models the mprotect(2) system call: takes the mmap lock for writing. */
export function* sysMprotect(mm: MmStruct, start: number, len: number, prot: number): Kernel<SysResult<0>> {
  yield* mm.mmapWriteLock();
  try {
    return yield* doMprotect(mm, start, len, prot);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
}
