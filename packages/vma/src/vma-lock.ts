import type { Kernel } from '@spf/machine';
import type { MmStruct } from './mm-struct.js';
import type { VmArea } from './vm-area.js';

/**
 * Per-VMA locks (Linux 6.4, include/linux/mmap_lock.h and mm/memory.c): a fault may run under the VMA's
 * own read lock instead of the mmap lock. A writer holding the mmap lock for writing marks each VMA it
 * modifies with `vma_start_write()`; the mark lasts until the mmap lock is released (which bumps
 * mm_lock_seq), so readers fail until then.
 */

/**
 * The places where Linux 6.4 (with its 6.4.y fixes) write-locks a VMA, each a switch of the mm
 * ({@link VmaLocking}) so an experiment can remove one and watch what breaks. Off, the site skips
 * `vma_start_write()`; every other site and the vm_sequence sections of the SPF designs are unchanged.
 */
export const VMA_START_WRITE_SITES = {
  vmaPrepare:
    'vma_prepare() in mm/mmap.c: the VMAs a split, merge or expansion changes or removes, before the tree update',
  newVma:
    'a VMA about to become visible in the tree (mmap_region(), __split_vma(), copy_vma(): "mm: lock newly mapped VMA which can be modified after it becomes visible")',
  mprotect: "mprotect_fixup() in mm/mprotect.c, before vm_flags_reset_once() changes the VMA's flags",
  vmFlags: 'vm_flags_reset() in include/linux/mm.h for the other flag changes (madvise_update_vma())',
  mremap: 'move_vma() in mm/mremap.c, before the page tables move to the new range',
  munmap:
    'do_vmi_align_munmap() in mm/mmap.c, before the VMAs are removed from the tree (vma_mark_detached())',
  freePgtables: 'free_pgtables() in mm/memory.c, before the page tables of a VMA are freed (mm write-locked)',
  expandStack:
    'expand_downwards() in mm/mmap.c, before a stack VMA grows (6.4 does it under the mmap read lock)',
  dupMmap:
    'dup_mmap() in kernel/fork.c, on every parent VMA before its PTEs are write-protected ("fork: lock VMAs of the parent process when forking")',
} as const;

/** A site of {@link VMA_START_WRITE_SITES}. */
export type VmaStartWriteSite = keyof typeof VMA_START_WRITE_SITES;

/**
 * When `mmap_write_unlock()` ends the VMA write locks of its section (`vma_end_write_all()`: mm_lock_seq++):
 * `before-unlock`, as Linux does, or `after-unlock` (the broken order an experiment can pick: a writer that
 * takes the mmap lock in between marks its VMAs with the old sequence, and the late bump unlocks them).
 */
export type VmaEndWriteAllOrder = 'before-unlock' | 'after-unlock';

/**
 * The writer side of the per-VMA locks as replaceable code (an injection point: Lab 5 of the course plugs
 * the student's in here through @spf/fault-spec's `perVmaLock({ paths })`). Each member is optional; a
 * missing one is this package's.
 * - `vmaStartWrite(vma, site)` runs where {@link vmaStartWrite} would lock (only at sites the mm's
 *   {@link VmaLocking.startWrite} leaves on; `site` is undefined for a call that names none). It must leave
 *   the VMA write-locked for the rest of the current mmap write section.
 * - `vmaEndWriteAll(mm)` runs where `mmap_write_unlock()` and `mmap_write_downgrade()` end every VMA write
 *   lock of the section ({@link MmStruct.vmaEndWriteAll}).
 */
export interface VmaWriteLockPaths {
  readonly vmaStartWrite?: (vma: VmArea, site: VmaStartWriteSite | undefined) => Kernel<void>;
  readonly vmaEndWriteAll?: (mm: MmStruct) => Kernel<void>;
}

/** How an mm's writers use the per-VMA locks: every field optional, Linux's behaviour by default. */
export interface VmaLockingOptions {
  /** Per site: call `vma_start_write()` there (default true everywhere). */
  readonly startWrite?: Partial<Readonly<Record<VmaStartWriteSite, boolean>>>;
  /** Default `before-unlock`. */
  readonly endWriteAll?: VmaEndWriteAllOrder;
  /** Another `vma_start_write()` / `vma_end_write_all()` to run (default: this package's). */
  readonly paths?: VmaWriteLockPaths | null;
}

/** {@link VmaLockingOptions} with every default filled in, as an mm holds them. */
export interface VmaLocking {
  readonly startWrite: Readonly<Record<VmaStartWriteSite, boolean>>;
  readonly endWriteAll: VmaEndWriteAllOrder;
  /** The replacement writer code, or null for this package's. */
  readonly paths: VmaWriteLockPaths | null;
}

/** Linux's per-VMA locking: every site on, vma_end_write_all() before the mmap lock is released. */
export const LINUX_VMA_LOCKING: VmaLocking = Object.freeze({
  startWrite: Object.freeze(
    Object.fromEntries(Object.keys(VMA_START_WRITE_SITES).map((k) => [k, true])) as Record<
      VmaStartWriteSite,
      boolean
    >,
  ),
  endWriteAll: 'before-unlock',
  paths: null,
});

/** A {@link VmaLockingOptions} value that names no known site or order. */
export class VmaLockingConfigError extends Error {
  override name = 'VmaLockingConfigError';
}

/**
 * Fills in the defaults of {@link VmaLockingOptions}. Throws {@link VmaLockingConfigError} for an unknown
 * site, a non-boolean switch or an unknown order, so a typo never silently keeps a site on.
 */
export function resolveVmaLocking(opts: VmaLockingOptions | undefined): VmaLocking {
  if (opts === undefined) return LINUX_VMA_LOCKING;
  const startWrite = { ...LINUX_VMA_LOCKING.startWrite };
  for (const [k, v] of Object.entries(opts.startWrite ?? {})) {
    if (!(k in VMA_START_WRITE_SITES)) {
      throw new VmaLockingConfigError(
        `vmaLocking.startWrite.${k}: no such vma_start_write() site; the sites are ${Object.keys(VMA_START_WRITE_SITES).join(', ')}`,
      );
    }
    if (typeof v !== 'boolean') {
      throw new VmaLockingConfigError(`vmaLocking.startWrite.${k} must be true or false, got ${String(v)}`);
    }
    startWrite[k as VmaStartWriteSite] = v;
  }
  const endWriteAll = opts.endWriteAll ?? 'before-unlock';
  if (endWriteAll !== 'before-unlock' && endWriteAll !== 'after-unlock') {
    throw new VmaLockingConfigError(
      `vmaLocking.endWriteAll must be 'before-unlock' or 'after-unlock', got ${String(endWriteAll)}`,
    );
  }
  const paths = opts.paths ?? null;
  if (paths !== null) {
    if (typeof paths !== 'object') {
      throw new VmaLockingConfigError(
        `vmaLocking.paths must be an object with vmaStartWrite and/or vmaEndWriteAll, got ${String(paths)}`,
      );
    }
    for (const k of Object.keys(paths)) {
      if (k !== 'vmaStartWrite' && k !== 'vmaEndWriteAll') {
        throw new VmaLockingConfigError(
          `vmaLocking.paths.${k}: no such path; the paths are vmaStartWrite and vmaEndWriteAll`,
        );
      }
      const f = (paths as Record<string, unknown>)[k];
      if (f !== undefined && typeof f !== 'function') {
        throw new VmaLockingConfigError(
          `vmaLocking.paths.${k} must be a generator function, got ${typeof f}`,
        );
      }
    }
  }
  return Object.freeze({ startWrite: Object.freeze(startWrite), endWriteAll, paths });
}

/**
 * Models `vma_start_write()` in include/linux/mm.h (6.4): waits for readers of the VMA to leave, then marks
 * it write-locked for the rest of this mmap write-lock section. The caller holds the mmap lock for writing
 * (or, at `expandStack`, for reading, as 6.4 did). `site` names the call site: when the mm's
 * {@link VmaLocking} switches it off, nothing happens; a call without a site always locks. With
 * `vmaLocking.paths.vmaStartWrite` set, that code runs instead of ours (after the site's switch).
 */
export function* vmaStartWrite(vma: VmArea, site?: VmaStartWriteSite): Kernel<void> {
  const locking = vma.vmMm.vmaLocking;
  if (site !== undefined && !locking.startWrite[site]) return;
  const replacement = locking.paths?.vmaStartWrite;
  if (replacement !== undefined) return yield* replacement(vma, site);
  const mmSeq = vma.vmMm.mmLockSeq.value;
  if (vma.vmLockSeq.value === mmSeq) return;
  // Linux takes the lock, stores vm_lock_seq and releases it. We store first and then wait out the
  // readers only if the lock exists at all: a reader that takes the lock later re-checks vm_lock_seq
  // after acquiring it (vmaStartRead) and backs off, so the outcome is the same without a lock object
  // for every VMA.
  yield* vma.vmLockSeq.store(mmSeq);
  if (!vma.hasVmLock) return;
  yield* vma.vmLock.downWrite();
  yield* vma.vmLock.upWrite();
}

/**
 * The three steps of `vma_start_read()`, each a switch for experiments (all true in Linux):
 * - `earlyOut`: give up before touching the lock when vm_lock_seq equals mm_lock_seq (a writer marked the VMA);
 * - `trylock`: take the lock with `down_read_trylock()`; off, with `down_read()`, which may sleep, inside the
 *   caller's RCU read section;
 * - `recheck`: compare vm_lock_seq with mm_lock_seq again once the lock is held (a writer may have marked the
 *   VMA and released the lock between the first look and the trylock).
 */
export interface VmaStartReadSteps {
  readonly earlyOut: boolean;
  readonly trylock: boolean;
  readonly recheck: boolean;
}

const LINUX_START_READ: VmaStartReadSteps = { earlyOut: true, trylock: true, recheck: true };

/**
 * Models `vma_start_read()` in include/linux/mm.h (6.4): takes the VMA's read lock without sleeping,
 * failing (so the caller falls back to the mmap lock) if a writer has marked the VMA in the current mmap
 * write section. `steps` switches the individual steps off for experiments (default: Linux's).
 */
export function* vmaStartRead(vma: VmArea, steps: VmaStartReadSteps = LINUX_START_READ): Kernel<boolean> {
  vma.checkLive('vma_start_read');
  // The Cell loads inlined (`yield line.readEffect`, then the value): the same effects, fewer generators on
  // the path every per-VMA-lock fault takes.
  const mmLockSeq = vma.vmMm.mmLockSeq;
  const vmLockSeq = vma.vmLockSeq;
  if (steps.earlyOut) {
    yield mmLockSeq.line.readEffect;
    const mmSeq = mmLockSeq.value;
    yield vmLockSeq.line.readEffect;
    if (vmLockSeq.value === mmSeq) return false;
  }
  if (steps.trylock) {
    if (!(yield* vma.vmLock.downReadTrylock())) return false;
  } else {
    yield* vma.vmLock.downRead();
  }
  if (steps.recheck) {
    yield vmLockSeq.line.readEffect;
    const seq = vmLockSeq.value;
    yield mmLockSeq.line.readEffect;
    if (seq === mmLockSeq.value) {
      yield* vma.vmLock.upRead();
      return false;
    }
  }
  return true;
}

/** Models `vma_end_read()`. */
export function vmaEndRead(vma: VmArea): Kernel<void> {
  return vma.vmLock.upRead(); // the lock's own kernel code, not wrapped in a generator of ours
}

/** Whether the VMA is write-locked in the current mmap write section (`vma_assert_write_locked`). */
export function vmaIsWriteLocked(vma: VmArea): boolean {
  return vma.vmLockSeq.value === vma.vmMm.mmLockSeq.value;
}
