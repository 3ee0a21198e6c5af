import { type Page, PAGE_SIZE, type PhysicalMemory, ptePfn, pteSpecial } from '@spf/pagetable';
import type { VmArea } from '../vm-area.js';
import { VM_MIXEDMAP, VM_PFNMAP } from '../vm-flags.js';
import type { MemoryEnv } from './memory-env.js';

/** Models `is_zero_pfn()` in include/linux/pgtable.h: whether `pfn` is the shared zero page. */
export function isZeroPfn(mem: PhysicalMemory, pfn: number): boolean {
  return mem.zeroPfn >= 0 && pfn === mem.zeroPfn;
}

/**
 * Models `vm_normal_page()` in mm/memory.c: the `struct page` behind the present PTE `pte` of `vma` at
 * `addr`, or null when the PTE maps something the mm must not count or reference (the shared zero page, a
 * PFN mapping). Faults (do_wp_page) and syscalls (zap, mprotect, fork, the invariant checker) all ask here.
 *
 * With `env.pteSpecial` (`CONFIG_ARCH_HAS_PTE_SPECIAL`, always on x86-64) the PTE alone decides: special
 * PTEs have no normal page. Without it, the function must read the VMA: `vm_flags` for VM_PFNMAP /
 * VM_MIXEDMAP and, for a PFN mapping, `vm_start` and `vm_pgoff` to tell a remapped PFN (no page) from a
 * COW copy (a normal page). Those VMA reads are why Dufour's SPF needed PTE_SPECIAL: a speculative fault
 * cannot trust `vm_start`/`vm_pgoff` of a VMA that may change under it.
 *
 * Simplification: `vm_ops->find_special_page`, device-map PTEs and the `highest_memmap_pfn` check
 * (`print_bad_pte`) are not modelled; a PFN outside memory throws from `mem.page()` instead.
 */
export function vmNormalPage(env: MemoryEnv, vma: VmArea, addr: number, pte: bigint): Page | null {
  const pfn = ptePfn(pte);
  if (env.pteSpecial) {
    if (!pteSpecial(pte)) return env.mem.page(pfn);
    return null;
  }
  if ((vma.vmFlags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0) {
    if ((vma.vmFlags & VM_MIXEDMAP) !== 0) {
      if (pfn >= env.mem.frames || isZeroPfn(env.mem, pfn)) return null;
    } else {
      const off = (addr - vma.vmStart) / PAGE_SIZE;
      if (pfn === vma.vmPgoff + off) return null;
      if (!vma.isCowMapping()) return null;
    }
  }
  if (isZeroPfn(env.mem, pfn)) return null;
  return env.mem.page(pfn);
}
