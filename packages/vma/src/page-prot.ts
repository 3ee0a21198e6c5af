import { VM_EXEC, VM_READ, VM_SHARED, VM_WRITE } from './vm-flags.js';

/**
 * x86-64 page protections (pgprot_t) as 64-bit PTE bits, and vm_get_page_prot().
 * Bit positions are the Intel SDM's (arch/x86/include/asm/pgtable_types.h).
 */
export const _PAGE_PRESENT = 1n << 0n;
export const _PAGE_RW = 1n << 1n;
export const _PAGE_USER = 1n << 2n;
export const _PAGE_ACCESSED = 1n << 5n;
export const _PAGE_DIRTY = 1n << 6n;
/** _PAGE_PROTNONE reuses the global bit (bit 8) on non-present entries. */
export const _PAGE_PROTNONE = 1n << 8n;
export const _PAGE_NX = 1n << 63n;

export const PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED;
export const PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
export const PAGE_COPY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
export const PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;

/** protection_map[] of arch/x86/mm/pgprot.c, indexed by VM_READ|VM_WRITE|VM_EXEC|VM_SHARED. */
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
