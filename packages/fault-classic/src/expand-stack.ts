import type { Kernel } from '@spf/machine';
import {
  anonVmaPrepare,
  type MmStruct,
  VM_ACCESS_FLAGS,
  VM_GROWSDOWN,
  VM_LOCKED,
  type VmArea,
  vmWriteBegin,
  vmWriteEnd,
} from '@spf/vma';
import type { FaultEnv } from './fault-env.js';

/** RLIMIT_STACK's default soft limit (8 MiB, `_STK_LIM` in include/uapi/linux/resource.h). */
export const DEFAULT_STACK_RLIMIT = 8 * 1024 * 1024;

/** Errors of {@link expandDownwards}, as negative errno values would be in the kernel. */
export type ExpandStackError = 'EPERM' | 'ENOMEM';

/**
 * Models `expand_downwards()` in mm/mmap.c (Linux 5.7 to 6.4, called from `do_user_addr_fault()` with the
 * mmap lock held for reading): grows the VM_GROWSDOWN VMA `vma` down to the page of `address`.
 *
 * Refused below `mmap_min_addr` (EPERM), within `stack_guard_gap` of an accessible VMA below (ENOMEM),
 * past RLIMIT_STACK or RLIMIT_AS (`acct_stack_growth()`, ENOMEM). The change itself is made under
 * `mm->page_table_lock`, which serialises concurrent expansions under the shared mmap lock, and inside the
 * VMA's `vm_write_begin()`/`vm_write_end()` so speculative readers notice it.
 *
 * Linux 6.5 moved stack expansion under the mmap write lock (`lock_mm_and_find_vma()` upgrades the lock
 * to expand); we keep the read-lock version the brief's kernels use. Returns null on success.
 */
export function* expandDownwards(
  env: FaultEnv,
  mm: MmStruct,
  vma: VmArea,
  address: number,
  stackRlimit = DEFAULT_STACK_RLIMIT,
): Kernel<ExpandStackError | null> {
  const addr = address - (address % 4096);
  if (addr < mm.mmapMinAddr) return 'EPERM';
  const prev = mm.findVmaPrev(vma.vmStart);
  if (
    prev !== null &&
    prev !== vma &&
    (prev.vmFlags & VM_GROWSDOWN) === 0 &&
    (prev.vmFlags & VM_ACCESS_FLAGS) !== 0 &&
    addr - prev.vmEnd < mm.stackGuardGap
  ) {
    return 'ENOMEM';
  }
  yield* anonVmaPrepare(vma);
  yield* mm.pageTableLock.lock();
  try {
    if (addr >= vma.vmStart) return null; // another thread expanded it meanwhile
    const size = vma.vmEnd - addr;
    const grow = (vma.vmStart - addr) / 4096;
    if (grow > vma.vmPgoff) return 'ENOMEM';
    // acct_stack_growth()
    if (!mm.mayExpandVm(grow) || size > stackRlimit) return 'ENOMEM';
    yield* vmWriteBegin(vma);
    const tx = mm.beginTree();
    tx.remove(vma.vmEnd);
    vma.vmStart = addr;
    vma.vmPgoff -= grow;
    tx.insert(vma.vmStart, vma.vmEnd, vma);
    yield* mm.commitTree(tx);
    if ((vma.vmFlags & VM_LOCKED) !== 0) mm.lockedVm += grow;
    mm.vmStatAccount(vma.vmFlags, grow);
    yield* vmWriteEnd(vma);
    env.vmstat.stackExpansions++;
    return null;
  } finally {
    yield* mm.pageTableLock.unlock();
  }
}
