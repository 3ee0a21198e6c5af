import {
  PAGE_COPY,
  PAGE_COPY_EXEC,
  PAGE_NONE,
  PAGE_READONLY,
  PAGE_READONLY_EXEC,
  PAGE_SHARED,
  PAGE_SHARED_EXEC,
} from '@spf/pagetable';
import { VM_EXEC, VM_READ, VM_SHARED, VM_WRITE } from './vm-flags.js';

/**
 * protection_map[] of arch/x86/mm/pgprot.c, indexed by VM_READ|VM_WRITE|VM_EXEC|VM_SHARED, built from
 * @spf/pagetable's page protections (64-bit PTE bits). Private writable entries are PAGE_COPY (read-only)
 * so that the first write faults and copies.
 */
export const protectionMap: readonly bigint[] = [
  PAGE_NONE,
  PAGE_READONLY,
  PAGE_COPY,
  PAGE_COPY,
  PAGE_READONLY_EXEC,
  PAGE_READONLY_EXEC,
  PAGE_COPY_EXEC,
  PAGE_COPY_EXEC,
  PAGE_NONE,
  PAGE_READONLY,
  PAGE_SHARED,
  PAGE_SHARED,
  PAGE_READONLY_EXEC,
  PAGE_READONLY_EXEC,
  PAGE_SHARED_EXEC,
  PAGE_SHARED_EXEC,
];

/** Models `vm_get_page_prot()` in mm/mmap.c: the PTE protection bits a VMA's flags imply. */
export function vmGetPageProt(vmFlags: number): bigint {
  return protectionMap[vmFlags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED)];
}
