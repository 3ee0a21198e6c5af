import type { Kernel } from '@spf/machine';
import { anonVmaPrepare } from './anon-vma.js';
import { Errno, type ErrnoValue } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { PAGE_SIZE, VM_ACCESS_FLAGS, VM_GROWSDOWN } from './vm-flags.js';
import type { VmArea } from './vm-area.js';
import { commitVmaChanges } from './vma-merge.js';

/** RLIMIT_STACK default (8 MiB). */
export const DEFAULT_RLIMIT_STACK = 8 * 1024 * 1024;

/**
 * Models `expand_downwards()` in mm/mmap.c: grows the VM_GROWSDOWN VMA `vma` down to cover `address`
 * (page aligned down), keeping the stack guard gap to an accessible VMA below, within RLIMIT_STACK and
 * RLIMIT_AS. The caller holds the mmap lock for writing (Linux 6.5+ `expand_stack()`). Returns 0 or an
 * errno (EFAULT not a stack, EPERM below mmap_min_addr, ENOMEM no room).
 */
export function* expandDownwards(
  mm: MmStruct,
  vma: VmArea,
  address: number,
  rlimitStack = DEFAULT_RLIMIT_STACK,
): Kernel<0 | ErrnoValue> {
  if (!(vma.vmFlags & VM_GROWSDOWN)) return Errno.EFAULT;
  address -= address % PAGE_SIZE;
  if (address < mm.mmapMinAddr) return Errno.EPERM;
  if (address >= vma.vmStart) return 0;
  const prev = mm.findVmaPrev(vma.vmStart);
  if (prev !== null) {
    if (prev.vmEnd > address) return Errno.ENOMEM;
    if (
      !(prev.vmFlags & VM_GROWSDOWN) &&
      prev.vmFlags & VM_ACCESS_FLAGS &&
      address - prev.vmEnd < mm.stackGuardGap
    ) {
      return Errno.ENOMEM;
    }
  }
  const size = vma.vmEnd - address;
  const grow = (vma.vmStart - address) / PAGE_SIZE;
  // acct_stack_growth()
  if (size > rlimitStack) return Errno.ENOMEM;
  if (!mm.mayExpandVm(grow)) return Errno.ENOMEM;
  yield* anonVmaPrepare(vma);
  yield* commitVmaChanges(mm, [{ vma, start: address, end: vma.vmEnd, pgoff: vma.vmPgoff - grow }], [], []);
  mm.vmStatAccount(vma.vmFlags, grow);
  return 0;
}
