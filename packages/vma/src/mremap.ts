import type { Kernel } from '@spf/machine';
import { Errno, type ErrnoValue, fail, ok, type SysResult } from './errno.js';
import { getUnmappedArea } from './get-unmapped-area.js';
import type { MmStruct } from './mm-struct.js';
import { MmuGather } from './page-table-ops.js';
import { doMunmap, validArg } from './munmap.js';
import { securityVmEnoughMemoryMm } from './overcommit.js';
import {
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  pageAlign,
  VM_ACCOUNT,
  VM_DONTEXPAND,
  VM_MAYSHARE,
  VM_PFNMAP,
  VM_SHARED,
} from './vm-flags.js';
import { type VmArea, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { commitVmaChanges, vmAreaDup, vmaMergeNewRange } from './vma-merge.js';
import { vmaStartWrite } from './vma-lock.js';
import { anonVmaClone } from './anon-vma.js';

/**
 * The arguments of mremap(2) after the mm, in the order of `SYSCALL_DEFINE5(mremap, ...)` in mm/mremap.c:
 * old address, old length, new length, MREMAP_* flags and (with MREMAP_FIXED or MREMAP_DONTUNMAP) the new
 * address, 0 when left out. Every mremap entry point (doMremap, sysMremap, mremapSync, a task's syscall
 * wrapper) takes them as `...args: MremapArgs` and passes them on unchanged.
 */
export type MremapArgs = [addr: number, oldLen: number, newLen: number, flags: number, newAddr?: number];

/**
 * Models `copy_vma()` in mm/vma.c: a VMA for [addr, addr+len) with `vma`'s attributes, merged with the
 * neighbours at the destination when possible. An unfaulted anonymous VMA takes the page offset of its new
 * address, which helps it merge. As in SPF v12, the VMA is returned inside its vm_sequence write section
 * (entered before it is linked, or kept from the merge), so no speculative fault maps a page at the
 * destination before the PTEs have moved; move_vma() ends it.
 */
function* copyVma(mm: MmStruct, vma: VmArea, addr: number, len: number, pgoff: number): Kernel<VmArea> {
  if (vma.isAnonymous() && vma.anonVma === null) pgoff = addr / PAGE_SIZE;
  const prev = mm.findVmaPrev(addr);
  const next = mm.findVma(addr);
  const merged = yield* vmaMergeNewRange(mm, {
    prev,
    middle: null,
    next,
    start: addr,
    end: addr + len,
    pgoff,
    flags: vma.vmFlags,
    file: vma.vmFile,
    ops: vma.vmOps,
    anonVma: vma.anonVma,
    copiedFrom: vma,
    keepLocked: true,
  });
  if (merged) return merged;
  const n = vmAreaDup(vma);
  n.vmStart = addr;
  n.vmEnd = addr + len;
  n.vmPgoff = pgoff;
  n.anonVmaChain = [];
  anonVmaClone(n, vma);
  n.vmFile?.get?.();
  n.vmOps?.open?.(n);
  yield* commitVmaChanges(mm, [], [], [n], true);
  return n;
}

/**
 * Models `move_vma()` in mm/mremap.c: copies the VMA to `newAddr`, moves the page tables, and unmaps the
 * old range (unless MREMAP_DONTUNMAP). If a page table at the destination cannot be allocated, the PTEs
 * moved so far are moved back (the old tables are still there, so this needs no memory), the new range
 * is unmapped instead of the old one, and the call fails with ENOMEM, leaving the old mapping as it was.
 */
function* moveVma(
  mm: MmStruct,
  vma: VmArea,
  oldAddr: number,
  oldLen: number,
  newLen: number,
  newAddr: number,
  dontUnmap: boolean,
): Kernel<SysResult<number>> {
  if (mm.mapCount >= mm.maxMapCount - 3) return fail(Errno.ENOMEM);
  if (!vrmCharge(mm, vma, oldLen, newLen, dontUnmap)) return fail(Errno.ENOMEM);
  const pgoff = vma.vmPgoff + (oldAddr - vma.vmStart) / PAGE_SIZE;
  // The source VMA is write-locked before its page tables move ("mm/mremap: write-lock VMA while
  // remapping it to a new address range", 6.4.y): a fault under its VMA lock must not map a page behind
  // move_page_tables().
  yield* vmaStartWrite(vma, 'mremap');
  const newVma = yield* copyVma(mm, vma, newAddr, newLen, pgoff);
  // SPF v12 ("mm: protect mremap() against SPF handler"): the source VMA is in a write section while its
  // PTEs move, as the new one is since copy_vma(); both sections end before do_munmap() below unlinks the
  // old VMA, as posted (see the fault-spec README on the window this leaves).
  if (vma !== newVma) yield* vmWriteBegin(vma);
  const len = Math.min(oldLen, newLen);
  const tlb = new MmuGather();
  const moved = yield* mm.pageTables.movePageTables(tlb, vma, oldAddr, newVma, newAddr, len);
  yield* mm.pageTables.tlbFinishMmu(tlb, oldAddr, oldAddr + oldLen);
  mm.vmStatAccount(vma.vmFlags, newLen / PAGE_SIZE);
  if (moved < len) {
    const back = new MmuGather();
    yield* mm.pageTables.movePageTables(back, newVma, newAddr, vma, oldAddr, moved);
    yield* mm.pageTables.tlbFinishMmu(back, newAddr, newAddr + moved);
    if (vma !== newVma) yield* vmWriteEnd(vma);
    yield* vmWriteEnd(newVma);
    // do_munmap() of the new range, which also takes back the vm_stat_account() above.
    yield* doMunmap(mm, newAddr, newLen);
    return fail(Errno.ENOMEM);
  }
  if (vma !== newVma) yield* vmWriteEnd(vma);
  yield* vmWriteEnd(newVma);
  // The old range is unmapped; as in Linux a failure here is ignored (the move has happened), and a
  // zero old_len (duplicating a shared mapping) unmaps nothing.
  if (!dontUnmap && oldLen > 0) yield* doMunmap(mm, oldAddr, oldLen);
  return ok(newAddr);
}

/**
 * Models `do_mremap()` in mm/mremap.c (Linux 6.16+ structure): shrink in place, grow in place when the
 * range ends at the VMA's end and the space after it is free (merging with the next VMA as Linux does),
 * otherwise move with MREMAP_MAYMOVE, or to `newAddr` with MREMAP_FIXED. Returns the new address.
 * Like Linux, MREMAP_FIXED unmaps the destination first, so a request that then fails (EFAULT because the
 * source was inside the destination's pages) has already unmapped it. The caller holds the mmap lock for
 * writing.
 */
export function* doMremap(mm: MmStruct, ...args: MremapArgs): Kernel<SysResult<number>> {
  let [addr, oldLen, newLen, flags, newAddr = 0] = args;
  if (![addr, oldLen, newLen, newAddr].every(validArg) || !Number.isInteger(flags)) return fail(Errno.EINVAL);
  oldLen = pageAlign(oldLen);
  newLen = pageAlign(newLen);
  // check_mremap_params()
  // flags is an unsigned long: any bit outside the three, bits 63:32 included, is EINVAL.
  if (flags < 0 || flags >= 2 ** 32 || flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) {
    return fail(Errno.EINVAL);
  }
  if (addr % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
  if (!newLen) return fail(Errno.EINVAL);
  if (newLen > mm.taskSize) return fail(Errno.EINVAL);
  // new_addr is looked at only when a flag asks for it: without MREMAP_FIXED or MREMAP_DONTUNMAP any value is
  // ignored (Linux 6.18 returns the old address for mremap(A, P, P, 0, 2^47)).
  const impliesNewAddr = (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
  if (impliesNewAddr) {
    if (newAddr > mm.taskSize - newLen) return fail(Errno.EINVAL);
    if (newAddr % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
    if (!(flags & MREMAP_MAYMOVE)) return fail(Errno.EINVAL);
    if (flags & MREMAP_DONTUNMAP && oldLen !== newLen) return fail(Errno.EINVAL);
    if (addr + oldLen > newAddr && newAddr + newLen > addr) return fail(Errno.EINVAL);
    // Both the destination and the source may be split in three before the move; stay four maps below
    // the limit so move_vma() cannot fail after something was unmapped.
    if (mm.mapCount + 2 >= mm.maxMapCount - 3) return fail(Errno.ENOMEM);
  }
  let vma = mm.vmaLookup(addr);
  if (vma === null) return fail(Errno.EFAULT);
  // check_prep_vma(): the remaining checks only matter when the operation maps new address space.
  if (newLen > oldLen || impliesNewAddr) {
    if (!oldLen && !(vma.vmFlags & (VM_SHARED | VM_MAYSHARE))) return fail(Errno.EINVAL);
    if (flags & MREMAP_DONTUNMAP && vma.vmFlags & (VM_DONTEXPAND | VM_PFNMAP)) return fail(Errno.EINVAL);
    if (oldLen > vma.vmEnd - addr) return fail(Errno.EFAULT);
    if (newLen > oldLen) {
      if (vma.vmFlags & (VM_DONTEXPAND | VM_PFNMAP)) return fail(Errno.EFAULT);
      if (!mm.mayExpandVm((newLen - oldLen) / PAGE_SIZE)) return fail(Errno.ENOMEM);
    }
  }
  if (impliesNewAddr) {
    // mremap_to()
    if (flags & MREMAP_FIXED) {
      const u = yield* doMunmap(mm, newAddr, newLen);
      if (!u.ok) return u;
      vma = mm.vmaLookup(addr);
      if (vma === null) return fail(Errno.EFAULT);
    }
    if (newLen < oldLen) {
      const s = yield* doMunmap(mm, addr + newLen, oldLen - newLen);
      if (!s.ok) return s;
      oldLen = newLen;
      vma = mm.vmaLookup(addr) as VmArea;
    }
    const dest = newAddrFor(mm, vma, flags, newAddr, newLen);
    if (typeof dest !== 'number') return fail(dest.errno);
    return yield* moveVma(mm, vma, addr, oldLen, newLen, dest, (flags & MREMAP_DONTUNMAP) !== 0);
  }
  if (newLen === oldLen) return ok(addr);
  if (newLen < oldLen) {
    const s = yield* doMunmap(mm, addr + newLen, oldLen - newLen);
    return s.ok ? ok(addr) : s;
  }
  // expand_vma()
  const delta = newLen - oldLen;
  if (vma.vmEnd - addr === oldLen && vmaExpandable(mm, vma, delta)) {
    if (!vrmCharge(mm, vma, oldLen, newLen, false)) return fail(Errno.ENOMEM);
    const grown = yield* vmaMergeNewRange(mm, {
      prev: vma,
      middle: null,
      next: mm.findVma(vma.vmEnd),
      start: vma.vmEnd,
      end: vma.vmEnd + delta,
      pgoff: vma.vmPgoff + vma.pages,
      flags: vma.vmFlags,
      file: vma.vmFile,
      ops: vma.vmOps,
      anonVma: vma.anonVma,
    });
    if (grown === null) return fail(Errno.ENOMEM);
    mm.vmStatAccount(vma.vmFlags, delta / PAGE_SIZE);
    return ok(addr);
  }
  if (!(flags & MREMAP_MAYMOVE)) return fail(Errno.ENOMEM);
  const dest = newAddrFor(mm, vma, flags, 0, newLen);
  if (typeof dest !== 'number') return fail(dest.errno);
  return yield* moveVma(mm, vma, addr, oldLen, newLen, dest, false);
}

/**
 * Models `vrm_calc_charge()` in mm/mremap.c: an accounted (VM_ACCOUNT) mapping that grows is charged the
 * growth, or the whole new length with MREMAP_DONTUNMAP (the old range stays mapped); whether the overcommit
 * policy allows it (`security_vm_enough_memory_mm()`). Like Linux, an accounted move that charges nothing
 * still asks: under `never`, a process already past its commit limit (the limit falls as total_vm grows)
 * gets ENOMEM for it too.
 */
function vrmCharge(mm: MmStruct, vma: VmArea, oldLen: number, newLen: number, dontUnmap: boolean): boolean {
  if (!(vma.vmFlags & VM_ACCOUNT)) return true;
  const charged = (dontUnmap ? newLen : Math.max(0, newLen - oldLen)) / PAGE_SIZE;
  return securityVmEnoughMemoryMm(mm, charged);
}

/** Models `vma_expandable()`: the range after the VMA is free and inside the address space. */
function vmaExpandable(mm: MmStruct, vma: VmArea, delta: number): boolean {
  const end = vma.vmEnd + delta;
  if (mm.findVmaIntersection(vma.vmEnd, end) !== null) return false;
  const r = getUnmappedArea(mm, vma.vmStart, end - vma.vmStart, MAP_FIXED);
  return 'addr' in r;
}

/** Models `vrm_set_new_addr()`: the destination of a move. */
function newAddrFor(
  mm: MmStruct,
  vma: VmArea,
  flags: number,
  newAddr: number,
  newLen: number,
): number | { errno: ErrnoValue } {
  let mapFlags = 0;
  if (flags & MREMAP_FIXED) mapFlags |= MAP_FIXED;
  if (vma.vmFlags & VM_MAYSHARE) mapFlags |= MAP_SHARED;
  const r = getUnmappedArea(mm, newAddr, newLen, mapFlags, { file: vma.vmFile !== null });
  return 'addr' in r ? r.addr : r;
}

/** Models the mremap(2) system call: takes the mmap lock for writing. */
export function* sysMremap(mm: MmStruct, ...args: MremapArgs): Kernel<SysResult<number>> {
  yield* mm.mmapWriteLock();
  try {
    return yield* doMremap(mm, ...args);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
}
