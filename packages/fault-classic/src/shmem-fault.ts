import { type Kernel, delayEffect } from '@spf/machine';
import { getPage, type Page } from '@spf/pagetable';
import { ShmemZeroFile, type VmFault, type VmOperations } from '@spf/vma';
import { allocUserPage } from './alloc-page.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS } from './fault-flags.js';

/**
 * Models `shmem_fault()` in mm/shmem.c for the shmem file behind a shared anonymous mapping
 * (`shmem_zero_setup()`): the page at `vmf.pgoff` of the file's page cache, created zeroed on first use
 * (charging `cost.zeroPage`). The page cache keeps one reference; the caller gets another in `vmf.page`.
 * The page is swap-backed and not anonymous, so it is accounted in MM_SHMEMPAGES and /proc/PID/pagemap
 * shows it as a file page.
 *
 * Simplifications: no swap, no huge pages, no fallocate holes; the page is returned unlocked (Linux returns
 * it locked with VM_FAULT_LOCKED; `__do_fault()` then locks it here instead, with the same effect).
 */
export function* shmemFault(vmf: VmFault): Kernel<number> {
  const file = vmf.vma.vmFile;
  if (!(file instanceof ShmemZeroFile)) return VM_FAULT_SIGBUS;
  const env = vmf.env;
  const cached = file.pages.get(vmf.pgoff);
  let page: Page;
  if (cached !== undefined) {
    page = cached;
  } else {
    const fresh = allocUserPage(env);
    if (fresh === null) return VM_FAULT_OOM;
    env.mem.zeroFrame(fresh.pfn);
    fresh.mapping = file;
    fresh.index = vmf.pgoff;
    fresh.set('swapbacked');
    fresh.set('uptodate');
    file.pages.set(vmf.pgoff, fresh);
    page = fresh;
    yield delayEffect(env.cost.zeroPage, 'clear_page (shmem)');
  }
  yield* getPage(page);
  vmf.page = page;
  return 0;
}

/** The vm_ops of a shared anonymous mapping (`shmem_anon_vm_ops` in mm/shmem.c). */
export const shmemVmOps: VmOperations = {
  fault: shmemFault,
};
