import { type Kernel, runSync } from '@spf/machine';
import { doBrk } from './brk.js';
import { dupMmap } from './dup-mmap.js';
import type { SysResult } from './errno.js';
import { doMadvise, madviseNeedMmapWrite } from './madvise.js';
import type { MmStruct } from './mm-struct.js';
import { doMmap, type MmapArgs } from './mmap.js';
import { doMprotect } from './mprotect.js';
import { doMremap, type MremapArgs } from './mremap.js';
import { doMunmap } from './munmap.js';
import type { PageTableFactory } from './page-table-ops.js';

/**
 * The mapping syscalls as plain synchronous calls on an mm that no other CPU uses (runSync: effects cost
 * nothing, nothing may block). Each call takes and drops the mmap lock like the syscall does, and, for an
 * mm with its own single-CPU RCU, ends with a grace period so freed tree nodes and VMAs are reclaimed.
 * MAP_POPULATE needs a fault handler, so use {@link sysMmap} on a machine for that.
 */
function run<T>(mm: MmStruct, write: boolean, body: () => Kernel<T>): T {
  const r = runSync(
    (function* () {
      if (write) yield* mm.mmapWriteLock();
      else yield* mm.mmapReadLock();
      try {
        return yield* body();
      } finally {
        if (write) yield* mm.mmapWriteUnlock();
        else yield* mm.mmapReadUnlock();
      }
    })(),
  );
  if (mm.ownsSyncRcu) runSync(mm.rcu.synchronize());
  return r;
}

/** mmap(2), synchronously. */
export function mmapSync(mm: MmStruct, args: MmapArgs): SysResult<number> {
  return run(mm, true, () => doMmap(mm, args));
}
/** munmap(2), synchronously. */
export function munmapSync(mm: MmStruct, addr: number, len: number): SysResult<0> {
  return run(mm, true, () => doMunmap(mm, addr, len));
}
/** mprotect(2), synchronously. */
export function mprotectSync(mm: MmStruct, addr: number, len: number, prot: number): SysResult<0> {
  return run(mm, true, () => doMprotect(mm, addr, len, prot));
}
/** mremap(2), synchronously. */
export function mremapSync(mm: MmStruct, ...args: MremapArgs): SysResult<number> {
  return run(mm, true, () => doMremap(mm, ...args));
}
/** brk(2), synchronously: returns the new break, or the old one on failure. */
export function brkSync(mm: MmStruct, brk: number): number {
  return run(mm, true, () => doBrk(mm, brk));
}
/** madvise(2), synchronously (the mmap lock for writing for the advice values that change vm_flags). */
export function madviseSync(mm: MmStruct, addr: number, len: number, advice: number): SysResult<0> {
  return run(mm, madviseNeedMmapWrite(advice), () => doMadvise(mm, addr, len, advice));
}
/** fork's dup_mmap, synchronously: the child's mm. Throws `ForkOutOfMemoryError` when memory runs out. */
export function forkSync(mm: MmStruct, pageTables?: PageTableFactory): MmStruct {
  const child = runSync(dupMmap(mm, pageTables));
  if (mm.ownsSyncRcu) runSync(mm.rcu.synchronize());
  return child;
}
