import type { Kernel } from '@spf/machine';
import { type MmStruct, VM_UFFD_MISSING, VM_UFFD_WP, type VmArea, vmaEndRead, vmaStartRead } from '@spf/vma';
import type { PerVmaReaderCheck } from './per-vma-checks.js';
import type { PerVmaLockCounters } from './per-vma-counters.js';

/**
 * `__VM_UFFD_FLAGS` in include/linux/userfaultfd_k.h: the flags of a VMA registered with userfaultfd
 * (VM_UFFD_MINOR, a high bit only some configurations have, is not modelled by @spf/vma).
 */
const VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP;

/**
 * Models `lock_vma_under_rcu()` in mm/memory.c (Linux 6.4): finds the VMA containing `address` in the tree
 * under `rcu_read_lock()` (`mas_walk()`: a gap gives none), refuses what 6.4 cannot handle under a VMA
 * lock (a VMA that is not anonymous or has no anon_vma yet, since `anon_vma_prepare()` looks at
 * neighbours that are not locked; a userfaultfd-armed VMA, whose handler would drop mmap_lock), read-locks
 * it with `vma_start_read()`, then re-checks that the address is still inside it and that it was not
 * detached meanwhile. A detached VMA means it was replaced: unlock, count VMA_LOCK_MISS and look again.
 * Returns the read-locked VMA, or null (VMA_LOCK_ABORT counted) when the caller must take mmap_lock.
 *
 * With `fileVmas` (Linux 6.7) a file-backed or shmem VMA is taken too.
 *
 * `checks` switches the individual checks off for experiments (see PER_VMA_LOCK_CHECKS). Where 6.4 tests
 * the anon_vma before locking (later kernels moved it after `vma_start_read()`), we follow 6.4.
 */
export function* lockVmaUnderRcu(
  mm: MmStruct,
  address: number,
  checks: Readonly<Record<PerVmaReaderCheck, boolean>>,
  counters: PerVmaLockCounters,
  fileVmas = false,
): Kernel<VmArea | null> {
  const startRead = {
    earlyOut: checks.mmLockSeqEarlyOut,
    trylock: checks.vmaTrylock,
    recheck: checks.vmLockSeqRecheck,
  };
  yield* mm.rcu.readLock();
  for (;;) {
    const e = yield* mm.tree.findRcu(address);
    const vma = e !== null && e.start <= address ? e.value : null;
    let locked = false;
    let usable = vma !== null;
    if (vma !== null) {
      // Only anonymous VMAs with an anon_vma, and no userfaultfd (6.4's limits); with `fileVmas` (6.7) file
      // VMAs too, whose COW faults prepare the anon_vma through vmf_anon_prepare() (a retry without one).
      const anon = vma.isAnonymous();
      if (checks.anonVmaCheck && (anon ? vma.anonVma === null : !fileVmas)) usable = false;
      if (usable && checks.uffdCheck && (vma.vmFlags & VM_UFFD_FLAGS) !== 0) usable = false;
      if (usable) locked = yield* vmaStartRead(vma, startRead);
      usable &&= locked;
      // vm_start/vm_end may have changed before the lock was taken.
      if (usable && checks.rangeCheck && (address < vma.vmStart || address >= vma.vmEnd)) usable = false;
      if (usable && checks.detachedCheck && vma.detached) {
        // The VMA was isolated after we found it: another one may cover the address now.
        yield* vmaEndRead(vma);
        counters.VMA_LOCK_MISS++;
        continue;
      }
    }
    if (usable && vma !== null) {
      yield* mm.rcu.readUnlock();
      return vma;
    }
    if (locked && vma !== null) yield* vmaEndRead(vma);
    yield* mm.rcu.readUnlock();
    counters.VMA_LOCK_ABORT++;
    return null;
  }
}
