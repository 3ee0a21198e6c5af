/**
 * x86-64 paging-structure entry bits at their Intel SDM positions (Vol. 3A, 4.5, tables 4-15 to 4-20), with
 * the software bits Linux gives them. Models arch/x86/include/asm/pgtable_types.h (Linux 6.x, x86-64).
 *
 * Entries are `bigint` in the public API so that all 64 bits are exact (XD is bit 63).
 */

export const _PAGE_BIT_PRESENT = 0;
export const _PAGE_BIT_RW = 1;
export const _PAGE_BIT_USER = 2;
export const _PAGE_BIT_PWT = 3;
export const _PAGE_BIT_PCD = 4;
export const _PAGE_BIT_ACCESSED = 5;
export const _PAGE_BIT_DIRTY = 6;
/** PS in a PDPTE or PDE (a 1 GiB or 2 MiB page). */
export const _PAGE_BIT_PSE = 7;
/** PAT in a PTE (the same position as PS). */
export const _PAGE_BIT_PAT = 7;
export const _PAGE_BIT_GLOBAL = 8;
export const _PAGE_BIT_SOFTW1 = 9;
export const _PAGE_BIT_SOFTW2 = 10;
export const _PAGE_BIT_SOFTW3 = 11;
/** PAT in a 2 MiB or 1 GiB leaf (bit 12, because bit 7 is PS there). */
export const _PAGE_BIT_PAT_LARGE = 12;
export const _PAGE_BIT_SOFTW4 = 57;
export const _PAGE_BIT_SOFTW5 = 58;
export const _PAGE_BIT_PKEY_BIT0 = 59;
export const _PAGE_BIT_NX = 63;
/** Linux: `pte_special()` (SOFTW1). */
export const _PAGE_BIT_SPECIAL = _PAGE_BIT_SOFTW1;
/** Linux: userfaultfd write-protect (SOFTW2). */
export const _PAGE_BIT_UFFD_WP = _PAGE_BIT_SOFTW2;
/** Linux: soft-dirty tracking (SOFTW3). */
export const _PAGE_BIT_SOFT_DIRTY = _PAGE_BIT_SOFTW3;
/** Linux: the shadow-stack "saved dirty" bit (SOFTW5). */
export const _PAGE_BIT_SAVED_DIRTY = _PAGE_BIT_SOFTW5;
/** Linux: PROT_NONE marker in a non-present entry (aliases GLOBAL, which only means something when P=1). */
export const _PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL;

const bit = (b: number): bigint => 1n << BigInt(b);

export const _PAGE_PRESENT = bit(_PAGE_BIT_PRESENT);
export const _PAGE_RW = bit(_PAGE_BIT_RW);
export const _PAGE_USER = bit(_PAGE_BIT_USER);
export const _PAGE_PWT = bit(_PAGE_BIT_PWT);
export const _PAGE_PCD = bit(_PAGE_BIT_PCD);
export const _PAGE_ACCESSED = bit(_PAGE_BIT_ACCESSED);
export const _PAGE_DIRTY = bit(_PAGE_BIT_DIRTY);
export const _PAGE_PSE = bit(_PAGE_BIT_PSE);
export const _PAGE_PAT = bit(_PAGE_BIT_PAT);
export const _PAGE_GLOBAL = bit(_PAGE_BIT_GLOBAL);
export const _PAGE_SOFTW1 = bit(_PAGE_BIT_SOFTW1);
export const _PAGE_SOFTW2 = bit(_PAGE_BIT_SOFTW2);
export const _PAGE_SOFTW3 = bit(_PAGE_BIT_SOFTW3);
export const _PAGE_PAT_LARGE = bit(_PAGE_BIT_PAT_LARGE);
export const _PAGE_SOFTW4 = bit(_PAGE_BIT_SOFTW4);
export const _PAGE_SOFTW5 = bit(_PAGE_BIT_SOFTW5);
export const _PAGE_SPECIAL = bit(_PAGE_BIT_SPECIAL);
export const _PAGE_UFFD_WP = bit(_PAGE_BIT_UFFD_WP);
export const _PAGE_SOFT_DIRTY = bit(_PAGE_BIT_SOFT_DIRTY);
export const _PAGE_SAVED_DIRTY = bit(_PAGE_BIT_SAVED_DIRTY);
export const _PAGE_PROTNONE = bit(_PAGE_BIT_PROTNONE);
export const _PAGE_NX = bit(_PAGE_BIT_NX);
/** The four protection-key bits 62:59 of a leaf entry. */
export const _PAGE_PKEY_MASK = 0xfn << BigInt(_PAGE_BIT_PKEY_BIT0);

/** Linux treats an entry holding only A and/or D as none (the Knights Landing erratum). */
export const _PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED;

/** `__PHYSICAL_MASK_SHIFT`: Linux's page-frame fields cover bits 51:12 whatever MAXPHYADDR is. */
export const __PHYSICAL_MASK_SHIFT = 52;
/** `PTE_PFN_MASK`: bits 51:12. */
export const PTE_PFN_MASK = ((1n << 52n) - 1n) & ~0xfffn;
/** `PTE_FLAGS_MASK`: everything that is not the frame number. */
export const PTE_FLAGS_MASK = ~PTE_PFN_MASK & 0xffff_ffff_ffff_ffffn;

/** `_PAGE_TABLE`: how Linux links a user page table into its parent (P RW US A D). */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
/** `_KERNPG_TABLE`: a kernel page-table link (P RW A D). */
export const _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

/** `PAGE_NONE`: PROT_NONE mappings (not present to the hardware, present to Linux). */
export const PAGE_NONE = _PAGE_ACCESSED | _PAGE_PROTNONE;
/** `PAGE_SHARED`: read/write, no exec. */
export const PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
/** `PAGE_COPY`: a private writable mapping before COW (read-only in the PTE). */
export const PAGE_COPY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
export const PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
export const PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
/** `__PAGE_KERNEL`: kernel data (global, no exec). */
export const PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX;

/** Page-table levels, numbered as the SDM counts them from the leaf: 1 = PT, 2 = PD, 3 = PDPT, 4 = PML4, 5 = PML5. */
export type Level = 1 | 2 | 3 | 4 | 5;

/** Names of the tables at each level (index = level). */
export const levelTableNames = ['', 'PT', 'PD', 'PDPT', 'PML4', 'PML5'] as const;
/** Names of the entries at each level (index = level). */
export const levelEntryNames = ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'] as const;
/** Linux's names of the levels (with 4-level paging, p4d is folded into pgd). */
export const linuxLevelNames = ['', 'pte', 'pmd', 'pud', 'p4d', 'pgd'] as const;

/** log2 of {@link PAGE_SIZE} (`PAGE_SHIFT`). */
export const PAGE_SHIFT = 12;
/** Page sizes in bytes. */
export const PAGE_SIZE = 4096;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PUD_SIZE = 1024 * 1024 * 1024;
/** Shift of the index of each level in a linear address (index = level). */
export const levelShift = [0, 12, 21, 30, 39, 48] as const;
/** Entries per table. */
export const PTRS_PER_TABLE = 512;
