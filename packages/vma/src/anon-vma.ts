import type { Kernel } from '@spf/machine';
import { PAGE_SHIFT, VM_ACCESS_FLAGS, VM_SOFTDIRTY } from './vm-flags.js';
import type { MmIds } from './mm-ids.js';
import type { VmArea } from './vm-area.js';

/**
 * struct anon_vma (include/linux/rmap.h): the reverse-map object anonymous pages point to. VMAs that may
 * hold pages of it are linked through {@link AnonVmaChain}s. After fork, the child's anon_vma has the
 * parent's as `parent` and shares its `root`. Its `id` (for reports) comes from the id space of the mm it
 * was made for, so it is the same in every run of the same system.
 */
export class AnonVma {
  readonly id: number;
  readonly root: AnonVma;
  readonly parent: AnonVma;
  /** Chains (VMAs) linked to this anon_vma: the rb_root interval tree of the kernel, as a set. */
  readonly chains = new Set<AnonVmaChain>();
  /** Number of child anon_vmas plus VMAs that point at this one (anon_vma->degree in older kernels). */
  numChildren = 0;
  /** Number of VMAs whose vma->anon_vma is this one. */
  numActiveVmas = 0;
  freed = false;
  constructor(ids: MmIds, parent?: AnonVma) {
    this.id = ids.nextAnonVma();
    this.parent = parent ?? this;
    this.root = parent ? parent.root : this;
    if (parent) parent.numChildren++;
  }
}

/** struct anon_vma_chain: links one VMA to one anon_vma. */
export class AnonVmaChain {
  constructor(
    readonly vma: VmArea,
    readonly anonVma: AnonVma,
  ) {}
}

function link(vma: VmArea, av: AnonVma): void {
  const avc = new AnonVmaChain(vma, av);
  vma.anonVmaChain.push(avc);
  av.chains.add(avc);
}

/**
 * Models `anon_vma_compatible()` in mm/vma.c: may `a` and `b` (adjacent, `a` below) share an anon_vma?
 * Same file, flags equal except access bits and soft-dirty, and contiguous offsets.
 */
export function anonVmaCompatible(a: VmArea, b: VmArea): boolean {
  return (
    a.vmEnd === b.vmStart &&
    a.vmFile === b.vmFile &&
    ((a.vmFlags ^ b.vmFlags) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY)) === 0 &&
    b.vmPgoff === a.vmPgoff + (b.vmStart - a.vmStart) / 2 ** PAGE_SHIFT
  );
}

/** Models `reusable_anon_vma()` in mm/vma.c. */
function reusableAnonVma(old: VmArea, a: VmArea, b: VmArea): AnonVma | null {
  if (anonVmaCompatible(a, b) && old.anonVma !== null && old.anonVmaChain.length === 1) return old.anonVma;
  return null;
}

/**
 * Models `find_mergeable_anon_vma()` in mm/vma.c: an adjacent VMA's anon_vma that `vma` may reuse, so that
 * VMAs which later merge share one anon_vma. Tries the next VMA first, then the previous one.
 */
export function findMergeableAnonVma(vma: VmArea): AnonVma | null {
  const mm = vma.vmMm;
  const next = mm.findVma(vma.vmEnd);
  if (next !== null && next.vmStart === vma.vmEnd) {
    const r = reusableAnonVma(next, vma, next);
    if (r) return r;
  }
  const prev = mm.findVmaPrev(vma.vmStart);
  if (prev !== null && prev.vmEnd === vma.vmStart) return reusableAnonVma(prev, prev, vma);
  return null;
}

/**
 * Models `__anon_vma_prepare()` in mm/rmap.c: gives `vma` an anon_vma before its first anonymous page is
 * mapped (called by the fault path with the mmap lock or the VMA lock held for reading). Reuses a
 * neighbour's anon_vma when compatible, else allocates one; the assignment is done under
 * mm->page_table_lock so two concurrent faults agree.
 */
export function* anonVmaPrepare(vma: VmArea): Kernel<AnonVma> {
  if (vma.anonVma) return vma.anonVma;
  const mm = vma.vmMm;
  const reuse = findMergeableAnonVma(vma);
  yield* mm.pageTableLock.lock();
  try {
    if (vma.anonVma === null) {
      const av = reuse ?? new AnonVma(mm.ids);
      vma.anonVma = av;
      av.numActiveVmas++;
      link(vma, av);
    }
  } finally {
    yield* mm.pageTableLock.unlock();
  }
  return vma.anonVma as AnonVma;
}

/**
 * Models `anon_vma_clone()` in mm/rmap.c: links `dst` to every anon_vma `src` is linked to (a split or
 * a merge of an unfaulted VMA). `dst.anonVma` must already be set by the caller.
 */
export function anonVmaClone(dst: VmArea, src: VmArea): void {
  for (const avc of src.anonVmaChain) link(dst, avc.anonVma);
  if (dst.anonVma) dst.anonVma.numActiveVmas++;
}

/**
 * Models `anon_vma_fork()` in mm/rmap.c: the child VMA is linked to all the parent's anon_vmas, then gets
 * its own anon_vma whose parent is the parent VMA's, so COW copies made by the child stay out of the
 * parent's rmap. (The kernel's reuse of an existing child anon_vma with no active VMAs is not modelled.)
 */
export function anonVmaFork(vma: VmArea, pvma: VmArea): void {
  vma.anonVma = null;
  vma.anonVmaChain = [];
  if (pvma.anonVma === null) return;
  for (const avc of pvma.anonVmaChain) link(vma, avc.anonVma);
  const av = new AnonVma(vma.vmMm.ids, pvma.anonVma);
  vma.anonVma = av;
  av.numActiveVmas++;
  // The kernel links the new anon_vma first (anon_vma_chain_link adds at the head).
  const avc = new AnonVmaChain(vma, av);
  vma.anonVmaChain.unshift(avc);
  av.chains.add(avc);
}

/** Models `unlink_anon_vmas()` in mm/rmap.c: unlinks `vma` from all its anon_vmas, freeing unused ones. */
export function unlinkAnonVmas(vma: VmArea): void {
  if (vma.anonVma) vma.anonVma.numActiveVmas--;
  for (const avc of vma.anonVmaChain) {
    const av = avc.anonVma;
    av.chains.delete(avc);
    if (av.chains.size === 0 && av.numChildren === 0) freeAnonVma(av);
  }
  vma.anonVmaChain = [];
}

function freeAnonVma(av: AnonVma): void {
  if (av.freed) return;
  av.freed = true;
  if (av.parent !== av) {
    av.parent.numChildren--;
    if (av.parent.chains.size === 0 && av.parent.numChildren === 0) freeAnonVma(av.parent);
  }
}

/** list_is_singular(&vma->anon_vma_chain) is false for a VMA that was forked from a parent with pages. */
export function vmaIsForkChild(vma: VmArea | null): boolean {
  return vma !== null && vma.anonVma !== null && vma.anonVmaChain.length !== 1;
}
