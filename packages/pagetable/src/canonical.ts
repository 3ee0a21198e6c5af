import { NonCanonicalAddressError } from './errors.js';

/**
 * Canonical linear addresses (Intel SDM Vol. 3A, 3.3.7.1 and 4.5): with 4-level paging bits 63:47 must all
 * equal bit 47; with 5-level paging (LA57) bits 63:56 must equal bit 56. A non-canonical access raises #GP.
 */

const MASK64 = 0xffff_ffff_ffff_ffffn;

/** Whether `va` (an unsigned 64-bit value, or a non-negative safe integer) is canonical. */
export function isCanonical(va: bigint | number, la57: boolean): boolean {
  if (typeof va === 'number') {
    // Numbers are non-negative safe integers, so only the lower half (bit 47/56 clear) is representable.
    return va >= 0 && va < (la57 ? 2 ** 56 : 2 ** 47);
  }
  if (va < 0n || va > MASK64) return false;
  const bits = la57 ? 57n : 48n;
  const top = va >> (bits - 1n);
  return top === 0n || top === (1n << (65n - bits)) - 1n;
}

/** Sign-extends an address from bit 47 (or 56) to a canonical 64-bit value. */
export function canonicalize(va: bigint, la57: boolean): bigint {
  const bits = la57 ? 57n : 48n;
  const low = va & ((1n << bits) - 1n);
  return (low >> (bits - 1n)) & 1n ? low | (MASK64 & ~((1n << bits) - 1n)) : low;
}

/** Throws {@link NonCanonicalAddressError} unless `va` is canonical; returns it as a bigint. */
export function checkCanonical(va: bigint | number, la57: boolean): bigint {
  if (typeof va === 'number' && (!Number.isSafeInteger(va) || va < 0)) {
    throw new NonCanonicalAddressError(
      `address ${va} is not a non-negative safe integer; pass addresses above 2^53 (and kernel addresses) as bigint`,
    );
  }
  if (!isCanonical(va, la57)) {
    throw new NonCanonicalAddressError(
      `address 0x${BigInt(va).toString(16)} is not canonical for ${la57 ? '5' : '4'}-level paging: bits 63:${la57 ? 56 : 47} must all be equal`,
    );
  }
  return BigInt(va);
}
