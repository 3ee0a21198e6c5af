import type { Kernel } from '@spf/machine';
import { anonVmaPrepare } from './anon-vma.js';
import { Errno, type ErrnoValue } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { type VmArea, vmaWriteOnce, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { vmaStartWrite } from './vma-lock.js';
import { PAGE_SIZE, VM_ACCESS_FLAGS, VM_GROWSDOWN } from './vm-flags.js';

/** RLIMIT_STACK's default soft limit (8 MiB, `_STK_LIM` in include/uapi/linux/resource.h). */
export const DEFAULT_RLIMIT_STACK = 8 * 1024 * 1024;

/**
 * Models `expand_downwards()` in mm/mmap.c as Linux 5.7 to 6.4 call it from `do_user_addr_fault()`, with
 * the mmap lock held for reading (or for writing): grows the VM_GROWSDOWN VMA `vma` down to the page of
 * `address`. Returns 0 (also when another thread already grew it that far) or an errno: EFAULT for a VMA
 * that is not a stack, EPERM below `mmap_min_addr`, ENOMEM when it would overlap or come within
 * `stack_guard_gap` of an accessible VMA below, pass `vm_pgoff` 0, or exceed RLIMIT_STACK or RLIMIT_AS
 * (`acct_stack_growth()`).
 *
 * The change is made under `mm->page_table_lock`, which serialises concurrent expansions under the shared
 * mmap lock, and inside the VMA's `vm_write_begin()`/`vm_write_end()` so speculative readers notice it.
 * The mm's accounting (`total_vm`, `stack_vm`, and `locked_vm` for a VM_LOCKED stack) grows once, through
 * `vm_stat_account()`. Linux 6.5 moved expansion under the mmap write lock (`lock_mm_and_find_vma()`);
 * the fault path here keeps the read-lock version.
 *
 * Simplification: RLIMIT_MEMLOCK is not checked for a VM_LOCKED stack.
 */
export function* expandDownwards(
  mm: MmStruct,
  vma: VmArea,
  address: number,
  rlimitStack = DEFAULT_RLIMIT_STACK,
): Kernel<0 | ErrnoValue> {
  if (!(vma.vmFlags & VM_GROWSDOWN)) return Errno.EFAULT;
  const addr = address - (address % PAGE_SIZE);
  if (addr < mm.mmapMinAddr) return Errno.EPERM;
  if (addr >= vma.vmStart) return 0;
  const prev = mm.findVmaPrev(vma.vmStart);
  if (prev !== null && prev !== vma) {
    if (prev.vmEnd > addr) return Errno.ENOMEM;
    if (
      !(prev.vmFlags & VM_GROWSDOWN) &&
      prev.vmFlags & VM_ACCESS_FLAGS &&
      addr - prev.vmEnd < mm.stackGuardGap
    ) {
      return Errno.ENOMEM;
    }
  }
  yield* anonVmaPrepare(vma);
  // 6.4 write-locks the stack VMA before growing it, although only the mmap read lock is held: the mark
  // then lasts until the next mmap_write_unlock() of this mm (faults on it use mmap_lock until then).
  yield* vmaStartWrite(vma, 'expandStack');
  yield* mm.pageTableLock.lock();
  try {
    if (addr >= vma.vmStart) return 0; // another thread expanded it meanwhile
    const size = vma.vmEnd - addr;
    const grow = (vma.vmStart - addr) / PAGE_SIZE;
    if (grow > vma.vmPgoff) return Errno.ENOMEM;
    // acct_stack_growth()
    if (size > rlimitStack || !mm.mayExpandVm(grow)) return Errno.ENOMEM;
    yield* vmWriteBegin(vma);
    const tx = mm.beginTree();
    tx.remove(vma.vmEnd);
    yield* vmaWriteOnce(vma, 'vmStart', addr);
    yield* vmaWriteOnce(vma, 'vmPgoff', vma.vmPgoff - grow);
    tx.insert(vma.vmStart, vma.vmEnd, vma);
    yield* mm.commitTree(tx);
    mm.vmStatAccount(vma.vmFlags, grow);
    yield* vmWriteEnd(vma);
    return 0;
  } finally {
    yield* mm.pageTableLock.unlock();
  }
}
