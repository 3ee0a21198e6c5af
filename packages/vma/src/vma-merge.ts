import { type Kernel, writeEffect } from '@spf/machine';
import { type AnonVma, anonVmaClone, unlinkAnonVmas, vmaIsForkChild } from './anon-vma.js';
import { Errno, type ErrnoValue } from './errno.js';
import { type MmStruct, vmRcuPut } from './mm-struct.js';
import { PAGE_SIZE, VM_IGNORE_MERGE, VM_SPECIAL } from './vm-flags.js';
import { vmaStartWrite } from './vma-lock.js';
import { type VmFile, type VmOperations, VmArea, vmaWriteOnce, vmWriteBegin, vmWriteEnd } from './vm-area.js';

/**
 * struct vma_merge_struct (mm/vma.h): a proposed range [start, end) with the attributes it would have,
 * and its neighbours.
 */
export type VmaMergeState = {
  prev: VmArea | null;
  /** The existing VMA being modified (existing-range merges), or null for a new range. */
  middle: VmArea | null;
  next: VmArea | null;
  start: number;
  end: number;
  pgoff: number;
  flags: number;
  file: VmFile | null;
  ops: VmOperations | null;
  anonVma: AnonVma | null;
  /** mremap: the VMA being copied from (vma_merge_copied_range). */
  copiedFrom?: VmArea | null;
  /** brk: only try to expand prev (vmg->just_expand). */
  justExpand?: boolean;
  /**
   * SPF v12's `keep_locked` of `__vma_merge()` (copy_vma for mremap): the VMA returned stays inside its
   * vm_sequence write section; the caller ends it with vmWriteEnd().
   */
  keepLocked?: boolean;
};

/** One change of a VMA's range inside an atomic tree update. */
type RangeChange = { vma: VmArea; start: number; end: number; pgoff: number };

/**
 * Applies range changes, removals and insertions as one tree transaction, each changed VMA inside its
 * vm_write_begin/vm_write_end section (vma_prepare + vma_complete in mm/vma.c). Removed VMAs are unlinked
 * from their anon_vmas and files and freed after a grace period; the caller adjusts map_count via the
 * returned delta (it is applied here). With `keepLocked` (SPF v12's copy_vma() for mremap) the changed and
 * inserted VMAs are left inside their write sections (an inserted one enters it before it is linked), for
 * the caller to end.
 */
export function* commitVmaChanges(
  mm: MmStruct,
  changes: readonly RangeChange[],
  removes: readonly VmArea[],
  inserts: readonly VmArea[],
  keepLocked = false,
): Kernel<void> {
  for (const v of [...changes.map((c) => c.vma), ...removes]) yield* vmaStartWrite(v, 'vmaPrepare');
  for (const v of inserts) yield* vmaStartWrite(v, 'newVma');
  for (const c of changes) yield* vmWriteBegin(c.vma);
  for (const r of removes) yield* vmWriteBegin(r);
  if (keepLocked) for (const v of inserts) yield* vmWriteBegin(v);
  const tx = mm.beginTree();
  for (const r of removes) tx.remove(r.vmEnd);
  for (const c of changes) tx.remove(c.vma.vmEnd);
  // vma_set_range() (__vma_adjust() in v12): vm_start, vm_end, vm_pgoff, each a store of its own.
  for (const c of changes) {
    yield* vmaWriteOnce(c.vma, 'vmStart', c.start);
    yield* vmaWriteOnce(c.vma, 'vmEnd', c.end);
    yield* vmaWriteOnce(c.vma, 'vmPgoff', c.pgoff);
  }
  for (const c of changes) tx.insert(c.start, c.end, c.vma);
  for (const v of inserts) tx.insert(v.vmStart, v.vmEnd, v);
  for (const r of removes) {
    r.detached = true;
    yield writeEffect(r.line, 'vma_mark_detached');
  }
  yield* mm.commitTree(tx);
  mm.mapCount += inserts.length - removes.length;
  for (const r of removes) yield* vmWriteEnd(r);
  if (!keepLocked) for (const c of changes) yield* vmWriteEnd(c.vma);
  for (const r of removes) {
    if (mm.vmFileRelease === 'removeVma' && r.vmFile?.put) yield* r.vmFile.put();
    unlinkAnonVmas(r);
    yield* vmRcuPut(r);
  }
}

/** Models `vm_area_dup()` in kernel/fork.c: a copy of `vma`'s attributes (not yet linked anywhere). */
export function vmAreaDup(vma: VmArea, mm: MmStruct = vma.vmMm): VmArea {
  const n = new VmArea(mm, vma.vmStart, vma.vmEnd, vma.vmFlags, vma.vmPgoff, vma.vmFile, vma.vmOps);
  n.vmPageProt = vma.vmPageProt;
  n.vmPrivateData = vma.vmPrivateData;
  n.anonVma = vma.anonVma;
  return n;
}

/**
 * Models `__split_vma()` in mm/vma.c: splits `vma` at `addr`; the new VMA takes the part below `addr`
 * (`newBelow`) or above it. Returns the new VMA or an errno (vm_ops->may_split refusing).
 */
export function* splitVma(
  mm: MmStruct,
  vma: VmArea,
  addr: number,
  newBelow: boolean,
): Kernel<VmArea | ErrnoValue> {
  if (vma.vmOps?.maySplit) {
    const err = vma.vmOps.maySplit(vma, addr);
    if (err) return Errno.EINVAL;
  }
  const n = vmAreaDup(vma);
  if (newBelow) n.vmEnd = addr;
  else {
    n.vmStart = addr;
    n.vmPgoff += (addr - vma.vmStart) / PAGE_SIZE;
  }
  anonVmaClone(n, vma);
  n.vmFile?.get?.();
  n.vmOps?.open?.(n);
  const change = newBelow
    ? { vma, start: addr, end: vma.vmEnd, pgoff: vma.vmPgoff + (addr - vma.vmStart) / PAGE_SIZE }
    : { vma, start: vma.vmStart, end: addr, pgoff: vma.vmPgoff };
  yield* commitVmaChanges(mm, [change], [], [n]);
  return n;
}

/** Models `split_vma()`: __split_vma with the max_map_count check. */
export function* splitVmaChecked(
  mm: MmStruct,
  vma: VmArea,
  addr: number,
  newBelow: boolean,
): Kernel<VmArea | ErrnoValue> {
  if (mm.mapCount >= mm.maxMapCount) return Errno.ENOMEM;
  return yield* splitVma(mm, vma, addr, newBelow);
}

function isMergeableVma(vmg: VmaMergeState, target: VmArea): boolean {
  return (
    ((target.vmFlags ^ vmg.flags) & ~VM_IGNORE_MERGE) === 0 &&
    target.vmFile === vmg.file &&
    target.vmOps === vmg.ops
  );
}

/** Models `is_mergeable_anon_vma()` in mm/vma.c (Linux 6.18). */
function isMergeableAnonVma(vmg: VmaMergeState, target: VmArea): boolean {
  const tgtAnon = target.anonVma;
  const srcAnon = vmg.anonVma;
  if (tgtAnon === null && srcAnon !== null) {
    return !vmaIsForkChild(vmg.middle) && !vmaIsForkChild(vmg.copiedFrom ?? null);
  }
  if (tgtAnon !== null && srcAnon === null) return !vmaIsForkChild(target);
  return srcAnon === tgtAnon;
}

/** Models `can_vma_merge_before()`: may the range merge in front of `vmg.next`? */
function canVmaMergeBefore(vmg: VmaMergeState): boolean {
  const next = vmg.next as VmArea;
  return (
    isMergeableVma(vmg, next) &&
    isMergeableAnonVma(vmg, next) &&
    next.vmPgoff === vmg.pgoff + (vmg.end - vmg.start) / PAGE_SIZE
  );
}

/** Models `can_vma_merge_after()`: may the range merge behind `vmg.prev`? */
function canVmaMergeAfter(vmg: VmaMergeState): boolean {
  const prev = vmg.prev as VmArea;
  return (
    isMergeableVma(vmg, prev) && isMergeableAnonVma(vmg, prev) && prev.vmPgoff + prev.pages === vmg.pgoff
  );
}

/** Models `can_vma_merge_left()`. */
function canVmaMergeLeft(vmg: VmaMergeState): boolean {
  return vmg.prev !== null && vmg.prev.vmEnd === vmg.start && canVmaMergeAfter(vmg);
}

/** Models `can_vma_merge_right()`, including the prev/next anon_vma compatibility check. */
function canVmaMergeRight(vmg: VmaMergeState, canMergeLeft: boolean): boolean {
  const next = vmg.next;
  if (next === null || vmg.end !== next.vmStart || !canVmaMergeBefore(vmg)) return false;
  if (!canMergeLeft) return true;
  const prev = vmg.prev as VmArea;
  return prev.anonVma === null || next.anonVma === null || prev.anonVma === next.anonVma;
}

/** Models `can_merge_remove_vma()`: a VMA with a close hook cannot be deleted by a merge. */
function canMergeRemoveVma(vma: VmArea): boolean {
  return !vma.vmOps?.close;
}

/** Models `dup_anon_vma()`: the merge target inherits the source's anon_vma when it has none. */
function dupAnonVma(dst: VmArea, src: VmArea): void {
  if (src.anonVma !== null && dst.anonVma === null) {
    dst.anonVma = src.anonVma;
    anonVmaClone(dst, src);
  }
}

/**
 * Models `vma_merge_new_range()` and `vma_expand()` in mm/vma.c: tries to cover the new range
 * [vmg.start, vmg.end) (which must be free) by expanding the previous and/or next VMA. Returns the
 * expanded VMA or null when no merge is possible.
 */
export function* vmaMergeNewRange(mm: MmStruct, vmg: VmaMergeState): Kernel<VmArea | null> {
  const { prev, next } = vmg;
  const end = vmg.end;
  if (vmg.flags & VM_SPECIAL || (prev === null && next === null)) return null;
  const canLeft = canVmaMergeLeft(vmg);
  const canRight = !vmg.justExpand && canVmaMergeRight(vmg, canLeft);
  let target: VmArea | null = null;
  let start = vmg.start;
  let newEnd = end;
  let pgoff = vmg.pgoff;
  if (canRight) {
    newEnd = (next as VmArea).vmEnd;
    target = next;
  }
  if (canLeft) {
    start = (prev as VmArea).vmStart;
    target = prev;
    pgoff = (prev as VmArea).vmPgoff;
    if (canRight && !canMergeRemoveVma(next as VmArea)) newEnd = end;
  }
  if (target === null) return null;
  // vma_expand()
  const removeNext = next !== null && target !== next && newEnd === next.vmEnd;
  if (removeNext) dupAnonVma(target, next as VmArea);
  if (vmg.copiedFrom) dupAnonVma(target, vmg.copiedFrom);
  yield* commitVmaChanges(
    mm,
    [{ vma: target, start, end: newEnd, pgoff }],
    removeNext ? [next as VmArea] : [],
    [],
    vmg.keepLocked === true,
  );
  return target;
}

/**
 * Models `vma_merge_existing_range()` in mm/vma.c: the attributes of [vmg.start, vmg.end) inside
 * `vmg.middle` change to `vmg.flags`; merge that range into prev and/or next when they now match.
 * Returns the VMA that covers the range after the merge, or null (nothing was changed).
 */
export function* vmaMergeExistingRange(mm: MmStruct, vmg: VmaMergeState): Kernel<VmArea | null> {
  const middle = vmg.middle as VmArea;
  const prev = vmg.prev;
  const { start, end } = vmg;
  const leftSide = start === middle.vmStart;
  const rightSide = end === middle.vmEnd;
  if (vmg.flags & VM_SPECIAL || (!leftSide && !rightSide)) return null;
  const mergeLeft = leftSide ? canVmaMergeLeft(vmg) : false;
  let next: VmArea | null = null;
  let mergeRight = false;
  if (rightSide) {
    next = mm.findVma(middle.vmEnd);
    vmg.next = next;
    mergeRight = canVmaMergeRight(vmg, mergeLeft);
  }
  if (!mergeLeft && !mergeRight) return null;
  let mergeBoth = mergeLeft && mergeRight;
  const removeMiddle = leftSide && rightSide;
  if (removeMiddle && !canMergeRemoveVma(middle)) return null;
  if (mergeBoth && !canMergeRemoveVma(next as VmArea)) {
    mergeRight = false;
    mergeBoth = false;
  }
  const changes: RangeChange[] = [];
  const removes: VmArea[] = [];
  let target: VmArea;
  if (mergeBoth) {
    const p = prev as VmArea;
    const n = next as VmArea;
    target = p;
    dupAnonVma(p, n.anonVma ? n : middle);
    changes.push({ vma: p, start: p.vmStart, end: n.vmEnd, pgoff: p.vmPgoff });
    removes.push(middle, n);
  } else if (mergeLeft) {
    const p = prev as VmArea;
    target = p;
    dupAnonVma(p, middle);
    changes.push({ vma: p, start: p.vmStart, end, pgoff: p.vmPgoff });
    if (removeMiddle) removes.push(middle);
    else
      changes.push({
        vma: middle,
        start: end,
        end: middle.vmEnd,
        pgoff: middle.vmPgoff + (end - middle.vmStart) / PAGE_SIZE,
      });
  } else {
    const n = next as VmArea;
    target = n;
    dupAnonVma(n, middle);
    const pglen = (end - start) / PAGE_SIZE;
    changes.push({ vma: n, start, end: n.vmEnd, pgoff: n.vmPgoff - pglen });
    if (removeMiddle) removes.push(middle);
    else changes.push({ vma: middle, start: middle.vmStart, end: start, pgoff: middle.vmPgoff });
  }
  yield* commitVmaChanges(mm, changes, removes, []);
  return target;
}

/**
 * Models `vma_modify()` in mm/vma.c: merge the changed range [vmg.start, vmg.end) of `vmg.middle` with a
 * neighbour if possible, otherwise split it off. Returns the VMA that now covers exactly the range (the
 * caller then sets its new attributes), or an errno (ENOMEM when a split would exceed max_map_count).
 */
export function* vmaModify(mm: MmStruct, vmg: VmaMergeState): Kernel<VmArea | ErrnoValue> {
  const merged = yield* vmaMergeExistingRange(mm, vmg);
  if (merged) return merged;
  const vma = vmg.middle as VmArea;
  if (vma.vmStart < vmg.start) {
    const r = yield* splitVmaChecked(mm, vma, vmg.start, true);
    if (typeof r === 'number') return r;
  }
  if (vma.vmEnd > vmg.end) {
    const r = yield* splitVmaChecked(mm, vma, vmg.end, false);
    if (typeof r === 'number') return r;
  }
  return vma;
}

/**
 * Models `vma_modify_flags()` in mm/vma.c: {@link vmaModify} for giving [start, end) of `vma` (whose
 * predecessor is `prev`) the flags `flags`, the step mprotect_fixup() and madvise_update_vma() share.
 * Returns the VMA that covers exactly the range, whose flags the caller then resets (vmFlagsReset), or an
 * errno.
 */
export function* vmaModifyFlags(
  mm: MmStruct,
  prev: VmArea | null,
  vma: VmArea,
  start: number,
  end: number,
  flags: number,
): Kernel<VmArea | ErrnoValue> {
  return yield* vmaModify(mm, vmgForExisting(prev, vma, start, end, flags));
}

/** Builds the merge state for changing [start, end) of `vma` to `flags` (VMG_VMA_STATE). */
export function vmgForExisting(
  prev: VmArea | null,
  vma: VmArea,
  start: number,
  end: number,
  flags: number,
): VmaMergeState {
  return {
    prev,
    middle: vma,
    next: null,
    start,
    end,
    pgoff: vma.vmPgoff + (start - vma.vmStart) / PAGE_SIZE,
    flags,
    file: vma.vmFile,
    ops: vma.vmOps,
    anonVma: vma.anonVma,
  };
}
