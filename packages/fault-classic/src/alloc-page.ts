import { type Kernel, delayEffect } from '@spf/machine';
import { OutOfMemoryError, type Page } from '@spf/pagetable';
import type { MemoryEnv } from '@spf/vma';

/**
 * Models `vma_alloc_zeroed_movable_folio()` (include/linux/highmem.h) for one 4 KiB page: allocate a page
 * and clear it, charging `cost.zeroPage` of simulated time for `clear_page()`. Returns null when memory is
 * exhausted (the caller returns VM_FAULT_OOM). The page has refcount 1, owned by the caller.
 */
export function* allocZeroedUserPage(env: MemoryEnv): Kernel<Page | null> {
  const page = allocUserPage(env);
  if (page === null) return null;
  env.mem.zeroFrame(page.pfn);
  yield delayEffect(env.cost.zeroPage, 'clear_page');
  return page;
}

/**
 * Models `folio_prealloc(..., need_zero = false)` in mm/memory.c: a page whose contents the caller
 * overwrites at once (with a copy), so it is not cleared. Null when memory is exhausted.
 */
export function allocUserPage(env: MemoryEnv): Page | null {
  try {
    const page = env.mem.allocPages(0);
    env.vmstat.pgalloc++;
    return page;
  } catch (e) {
    if (e instanceof OutOfMemoryError) return null;
    throw e;
  }
}

/**
 * Models `copy_user_highpage()` / `__wp_page_copy_user()` in mm/memory.c: copies a page's contents,
 * charging `cost.copyPage`.
 */
export function* copyUserPage(env: MemoryEnv, dst: Page, src: Page): Kernel<void> {
  env.mem.copyFrame(dst.pfn, src.pfn);
  yield delayEffect(env.cost.copyPage, 'copy_page');
}
