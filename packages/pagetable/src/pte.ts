import {
  _KERNPG_TABLE,
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_KNL_ERRATUM_MASK,
  _PAGE_NX,
  _PAGE_PKEY_MASK,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_SAVED_DIRTY,
  _PAGE_SOFT_DIRTY,
  _PAGE_SPECIAL,
  _PAGE_UFFD_WP,
  _PAGE_USER,
  PTE_FLAGS_MASK,
  PTE_PFN_MASK,
} from './entry-bits.js';
import { InvalidArgumentError, PhysicalAddressError } from './errors.js';

/**
 * Pure operations on entry values (`pte_t`, `pmd_t`, ... as `bigint`), named after include/linux/pgtable.h
 * and arch/x86/include/asm/pgtable.h. None of them touches memory: reading and writing entries is done by
 * {@link PageTables} (kernel form, each access a machine effect).
 */

const MASK64 = 0xffff_ffff_ffff_ffffn;

/** `pte_flags()`: the bits that are not the frame number. */
export function pteFlags(pte: bigint): bigint {
  return pte & PTE_FLAGS_MASK;
}

/**
 * `__pte_needs_invert()` in arch/x86/include/asm/pgtable-invert.h: a non-zero entry without P has its frame
 * bits stored inverted (the L1TF mitigation), so that a not-present entry never points at real memory.
 */
export function pteNeedsInvert(val: bigint): boolean {
  return val !== 0n && (val & _PAGE_PRESENT) === 0n;
}

function protnoneMask(val: bigint): bigint {
  return pteNeedsInvert(val) ? MASK64 : 0n;
}

/** `pte_none()`: no mapping at all (entries holding only A/D count as none, as on x86). */
export function pteNone(pte: bigint): boolean {
  return (pte & ~_PAGE_KNL_ERRATUM_MASK) === 0n;
}
/** `pte_present()`: P, or PROT_NONE (present to Linux, not to the hardware). */
export function ptePresent(pte: bigint): boolean {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0n;
}
/** `pte_protnone()`: a PROT_NONE (or NUMA-hinting) entry. */
export function pteProtnone(pte: bigint): boolean {
  return (pte & (_PAGE_PROTNONE | _PAGE_PRESENT)) === _PAGE_PROTNONE;
}
/** `pte_write()`. */
export function pteWrite(pte: bigint): boolean {
  return (pte & _PAGE_RW) !== 0n;
}
/** `pte_dirty()`: hardware D or Linux's saved-dirty bit. */
export function pteDirty(pte: bigint): boolean {
  return (pte & (_PAGE_DIRTY | _PAGE_SAVED_DIRTY)) !== 0n;
}
/** `pte_young()`: A. */
export function pteYoung(pte: bigint): boolean {
  return (pte & _PAGE_ACCESSED) !== 0n;
}
/** `pte_special()`: a mapping without a normal `struct page` behind it (`vm_normal_page()` skips it). */
export function pteSpecial(pte: bigint): boolean {
  return (pte & _PAGE_SPECIAL) !== 0n;
}
/** `pte_soft_dirty()`. */
export function pteSoftDirty(pte: bigint): boolean {
  return (pte & _PAGE_SOFT_DIRTY) !== 0n;
}
/** `pte_uffd_wp()`. */
export function pteUffdWp(pte: bigint): boolean {
  return (pte & _PAGE_UFFD_WP) !== 0n;
}
/** `pte_exec()`: XD clear. */
export function pteExec(pte: bigint): boolean {
  return (pte & _PAGE_NX) === 0n;
}
/** `pte_global()`. */
export function pteGlobal(pte: bigint): boolean {
  return (pte & _PAGE_GLOBAL) !== 0n;
}
/** `pte_user()`. */
export function pteUser(pte: bigint): boolean {
  return (pte & _PAGE_USER) !== 0n;
}
/** `pte_pkey()`: the protection key in bits 62:59. */
export function ptePkey(pte: bigint): number {
  return Number((pte & _PAGE_PKEY_MASK) >> 59n);
}
/** `pte_same()`. */
export function pteSame(a: bigint, b: bigint): boolean {
  return a === b;
}

/** `pte_mkwrite_novma()`: sets R/W (Linux's `pte_mkwrite()` without the shadow-stack case). */
export function pteMkwrite(pte: bigint): bigint {
  return pte | _PAGE_RW;
}
/** `pte_wrprotect()`: clears R/W; a hardware-dirty entry keeps its dirtiness in D (no shadow stacks here). */
export function pteWrprotect(pte: bigint): bigint {
  return pte & ~_PAGE_RW;
}
/** `pte_mkdirty()`: sets D and soft-dirty. */
export function pteMkdirty(pte: bigint): bigint {
  return pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY;
}
/** `pte_mkclean()`: clears D (and saved-dirty). */
export function pteMkclean(pte: bigint): bigint {
  return pte & ~(_PAGE_DIRTY | _PAGE_SAVED_DIRTY);
}
/** `pte_mkyoung()`: sets A. */
export function pteMkyoung(pte: bigint): bigint {
  return pte | _PAGE_ACCESSED;
}
/** `pte_mkold()`: clears A. */
export function pteMkold(pte: bigint): bigint {
  return pte & ~_PAGE_ACCESSED;
}
/** `pte_mkspecial()`. */
export function pteMkspecial(pte: bigint): bigint {
  return pte | _PAGE_SPECIAL;
}
/** `pte_mkexec()`: clears XD. */
export function pteMkexec(pte: bigint): bigint {
  return pte & ~_PAGE_NX;
}
/** `pte_mkhuge()`: sets PS (used for PMD/PUD leaves). */
export function pteMkhuge(pte: bigint): bigint {
  return pte | _PAGE_PSE;
}
/** `pte_mksoft_dirty()`. */
export function pteMksoftDirty(pte: bigint): bigint {
  return pte | _PAGE_SOFT_DIRTY;
}
/** `pte_clear_soft_dirty()`. */
export function pteClearSoftDirty(pte: bigint): bigint {
  return pte & ~_PAGE_SOFT_DIRTY;
}
/** `pte_mkuffd_wp()`: marks the entry uffd-wp and write-protects it. */
export function pteMkuffdWp(pte: bigint): bigint {
  return pteWrprotect(pte | _PAGE_UFFD_WP);
}
/** `pte_clear_uffd_wp()`. */
export function pteClearUffdWp(pte: bigint): bigint {
  return pte & ~_PAGE_UFFD_WP;
}
/** Sets the protection key (bits 62:59), 0 to 15. */
export function pteMkpkey(pte: bigint, pkey: number): bigint {
  if (!Number.isInteger(pkey) || pkey < 0 || pkey > 15) {
    throw new InvalidArgumentError(`protection key must be an integer from 0 to 15, got ${pkey}`);
  }
  return (pte & ~_PAGE_PKEY_MASK) | (BigInt(pkey) << 59n);
}

/**
 * `pfn_pte()` in arch/x86/include/asm/pgtable.h: an entry for frame `pfn` with protection `prot`. A
 * non-present `prot` (PROT_NONE) stores the frame number inverted, as Linux does since the L1TF fix.
 */
export function pfnPte(pfn: number | bigint, prot: bigint): bigint {
  const p = BigInt(pfn);
  if (p < 0n || p >= 1n << 40n) {
    throw new PhysicalAddressError(`pfn 0x${p.toString(16)} does not fit in an entry (bits 51:12)`);
  }
  let v = p << 12n;
  v ^= protnoneMask(prot);
  v &= PTE_PFN_MASK;
  return v | (prot & PTE_FLAGS_MASK);
}
/** `pfn_pmd()`: as {@link pfnPte}, for a PMD (a 2 MiB leaf when `prot` has PS). */
export const pfnPmd = pfnPte;
/** `pfn_pud()`. */
export const pfnPud = pfnPte;

/** `pte_pfn()`: the frame number, undoing the L1TF inversion of not-present entries. */
export function ptePfn(pte: bigint): number {
  let v = pte;
  v ^= protnoneMask(v);
  return Number((v & PTE_PFN_MASK) >> 12n);
}
/** `pmd_pfn()`. */
export const pmdPfn = ptePfn;
/** `pud_pfn()`. */
export const pudPfn = ptePfn;

/** `mk_pte(page, prot)`: an entry for a page (anything with a `pfn`). */
export function mkPte(page: { readonly pfn: number }, prot: bigint): bigint {
  return pfnPte(page.pfn, prot);
}

/** `pte_modify()`: replaces the protection bits, keeping the frame and the bits Linux keeps (A, D, special...). */
export function pteModify(pte: bigint, prot: bigint): bigint {
  const chg = PTE_PFN_MASK | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY | _PAGE_UFFD_WP;
  const pfn = ptePfn(pte);
  const kept = pte & chg & ~PTE_PFN_MASK;
  return pfnPte(pfn, (prot & ~chg) | kept);
}

/** `pmd_none()`. */
export function pmdNone(pmd: bigint): boolean {
  return (pmd & ~_PAGE_KNL_ERRATUM_MASK) === 0n;
}
/** `pmd_present()`: P, PROT_NONE or PS (a huge PMD being split is still present). */
export function pmdPresent(pmd: bigint): boolean {
  return (pmd & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE)) !== 0n;
}
/** `pmd_leaf()`: PS set, a 2 MiB page. */
export function pmdLeaf(pmd: bigint): boolean {
  return (pmd & _PAGE_PSE) !== 0n;
}
/** `pmd_bad()`: not a well-formed link to a page table (flags other than U and A differ from P RW D). */
export function pmdBad(pmd: bigint): boolean {
  return (pteFlags(pmd) & ~(_PAGE_USER | _PAGE_ACCESSED)) !== (_KERNPG_TABLE & ~_PAGE_ACCESSED);
}
/** `pud_none()`. */
export function pudNone(pud: bigint): boolean {
  return (pud & ~_PAGE_KNL_ERRATUM_MASK) === 0n;
}
/** `pud_present()`. */
export function pudPresent(pud: bigint): boolean {
  return (pud & _PAGE_PRESENT) !== 0n;
}
/** `pud_leaf()`: PS set, a 1 GiB page. */
export function pudLeaf(pud: bigint): boolean {
  return (pud & _PAGE_PSE) !== 0n;
}
/** `pud_bad()`: flags beyond those of a table link (`_KERNPG_TABLE | _PAGE_USER`). */
export function pudBad(pud: bigint): boolean {
  return (pteFlags(pud) & ~(_KERNPG_TABLE | _PAGE_USER)) !== 0n;
}
/** `p4d_none()`. */
export const p4dNone = pudNone;
/** `p4d_present()`. */
export const p4dPresent = pudPresent;
/** `p4d_bad()`. */
export const p4dBad = pudBad;
/** `pgd_none()`. */
export const pgdNone = pudNone;
/** `pgd_present()`. */
export const pgdPresent = pudPresent;
/** `pgd_bad()`: with the user bit ignored, anything but `_KERNPG_TABLE` is bad. */
export function pgdBad(pgd: bigint): boolean {
  return (pteFlags(pgd) & ~_PAGE_USER) !== _KERNPG_TABLE;
}
/** `pmd_mkyoung()` etc. are the PTE versions (same bits). */
export const pmdMkyoung = pteMkyoung;
export const pmdMkdirty = pteMkdirty;
export const pmdMkwrite = pteMkwrite;
export const pmdWrprotect = pteWrprotect;
export const pmdMkold = pteMkold;
export const pmdWrite = pteWrite;
export const pmdDirty = pteDirty;
export const pmdYoung = pteYoung;
