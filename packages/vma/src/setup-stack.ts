import type { Kernel } from '@spf/machine';
import { Errno, type ErrnoValue } from './errno.js';
import type { MmStruct } from './mm-struct.js';
import { PAGE_SIZE, VM_SOFTDIRTY, VM_STACK_FLAGS } from './vm-flags.js';
import { VmArea } from './vm-area.js';
import { commitVmaChanges } from './vma-merge.js';

/** x86-64 STACK_TOP without randomisation: TASK_SIZE (the stack ends just below the top guard page). */
export const DEFAULT_STACK_SIZE = 132 * 1024;

/**
 * Models the part of `setup_arg_pages()` (fs/exec.c) that the mm sees: the initial stack VMA
 * [stackTop - size, stackTop) with VM_STACK_FLAGS (VM_GROWSDOWN, VM_ACCOUNT, read/write), which
 * /proc/PID/maps names `[stack]` and the fault path grows downwards. Sets mm->start_stack just below the
 * top. The caller holds the mmap lock for writing. Returns the VMA, or EEXIST/EINVAL.
 */
export function* setupStack(
  mm: MmStruct,
  stackTop: number = mm.taskSize,
  size: number = DEFAULT_STACK_SIZE,
): Kernel<VmArea | ErrnoValue> {
  if (stackTop % PAGE_SIZE || size % PAGE_SIZE || size <= 0 || stackTop > mm.taskSize || size > stackTop) {
    return Errno.EINVAL;
  }
  const start = stackTop - size;
  if (mm.findVmaIntersection(start, stackTop) !== null) return Errno.EEXIST;
  const vma = new VmArea(mm, start, stackTop, VM_STACK_FLAGS | VM_SOFTDIRTY, start / PAGE_SIZE);
  yield* commitVmaChanges(mm, [], [], [vma]);
  mm.vmStatAccount(vma.vmFlags, size / PAGE_SIZE);
  mm.startStack = stackTop - 8;
  return vma;
}
