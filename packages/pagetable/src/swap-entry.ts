import { _PAGE_PSE, _PAGE_RW, _PAGE_USER } from './entry-bits.js';
import { InvalidArgumentError } from './errors.js';
import { pteNone, ptePresent } from './pte.js';

/**
 * Linux's x86-64 swap-entry encoding, after arch/x86/include/asm/pgtable_64.h (`__swp_entry()` and
 * friends). A swap PTE is neither none nor present: the 5-bit type sits in bits 63:59 and the offset,
 * stored inverted (the L1TF mitigation), in bits 58:9, above the PROT_NONE bit (8).
 */

/** `SWP_TYPE_BITS`. */
export const SWP_TYPE_BITS = 5;
/** `SWP_OFFSET_FIRST_BIT`: just above `_PAGE_BIT_PROTNONE`. */
export const SWP_OFFSET_FIRST_BIT = 9;
/** `SWP_OFFSET_SHIFT`. */
export const SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS;
/**
 * Largest offset accepted: the field has 50 bits, but the all-ones offset of type 0 would encode as an
 * empty entry (`pte_none()`), so it is excluded. (Linux never gets near it: `max_swapfile_size()` in
 * arch/x86/mm/init.c caps offsets far lower because of L1TF.)
 */
export const SWP_OFFSET_MAX = (1n << BigInt(64 - SWP_OFFSET_SHIFT)) - 2n;
/** `_PAGE_SWP_SOFT_DIRTY`: soft-dirty of a swapped-out page, kept in R/W. */
export const _PAGE_SWP_SOFT_DIRTY = _PAGE_RW;
/** `_PAGE_SWP_UFFD_WP`: uffd-wp of a swapped-out page, kept in U/S. */
export const _PAGE_SWP_UFFD_WP = _PAGE_USER;
/** `_PAGE_SWP_EXCLUSIVE`: the page was exclusive to this mapping when swapped out, kept in PS. */
export const _PAGE_SWP_EXCLUSIVE = _PAGE_PSE;

const MASK64 = 0xffff_ffff_ffff_ffffn;

/** An architecture-independent swap entry: which swap device (`type`) and which slot (`offset`). */
export type SwapEntry = { readonly type: number; readonly offset: bigint };

/** `swp_entry()`: checks the fields fit. */
export function swpEntry(type: number, offset: number | bigint): SwapEntry {
  const off = BigInt(offset);
  if (!Number.isInteger(type) || type < 0 || type >= 1 << SWP_TYPE_BITS) {
    throw new InvalidArgumentError(`swap type must be an integer from 0 to 31, got ${type}`);
  }
  if (off < 0n || off > SWP_OFFSET_MAX) {
    throw new InvalidArgumentError(`swap offset must be from 0 to 2^50-2, got ${off}`);
  }
  return { type, offset: off };
}

/** `swp_entry_to_pte()` (`__swp_entry()` + `__swp_entry_to_pte()`): the PTE value that holds `entry`. */
export function swpEntryToPte(entry: SwapEntry): bigint {
  const inv = ((~entry.offset & MASK64) << BigInt(SWP_OFFSET_SHIFT)) & MASK64;
  return (inv >> BigInt(SWP_TYPE_BITS)) | (BigInt(entry.type) << BigInt(64 - SWP_TYPE_BITS));
}

/** `pte_to_swp_entry()`: decodes a swap PTE (software bits such as soft-dirty are ignored). */
export function pteToSwpEntry(pte: bigint): SwapEntry {
  const type = Number(pte >> BigInt(64 - SWP_TYPE_BITS));
  const offset = (((~pte & MASK64) << BigInt(SWP_TYPE_BITS)) & MASK64) >> BigInt(SWP_OFFSET_SHIFT);
  return { type, offset };
}

/** `is_swap_pte()`: neither none nor present. */
export function isSwapPte(pte: bigint): boolean {
  return !pteNone(pte) && !ptePresent(pte);
}
/** `pte_swp_soft_dirty()`. */
export function pteSwpSoftDirty(pte: bigint): boolean {
  return (pte & _PAGE_SWP_SOFT_DIRTY) !== 0n;
}
/** `pte_swp_mksoft_dirty()`. */
export function pteSwpMksoftDirty(pte: bigint): bigint {
  return pte | _PAGE_SWP_SOFT_DIRTY;
}
/** `pte_swp_uffd_wp()`. */
export function pteSwpUffdWp(pte: bigint): boolean {
  return (pte & _PAGE_SWP_UFFD_WP) !== 0n;
}
/** `pte_swp_mkuffd_wp()`. */
export function pteSwpMkuffdWp(pte: bigint): bigint {
  return pte | _PAGE_SWP_UFFD_WP;
}
/** `pte_swp_exclusive()`. */
export function pteSwpExclusive(pte: bigint): boolean {
  return (pte & _PAGE_SWP_EXCLUSIVE) !== 0n;
}
/** `pte_swp_mkexclusive()`. */
export function pteSwpMkexclusive(pte: bigint): bigint {
  return pte | _PAGE_SWP_EXCLUSIVE;
}
