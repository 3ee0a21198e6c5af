import { KernelFault } from '@spf/machine';

/**
 * A user program asked for an access no instruction could make: an address that is not a whole number
 * from 0 to 2^53 - 1 (NaN, a fraction, a negative number), a stored value that is not a whole number (a
 * bigint, NaN), or a negative length. A bug in the program, not something Linux would see: the run stops with this
 * report instead of a host exception.
 */
export class InvalidUserAccessError extends KernelFault {
  override name = 'InvalidUserAccessError';
  constructor(message: string) {
    super('user-access', message);
  }
}

/** Throws {@link InvalidUserAccessError} unless `addr` is a whole number in [0, 2^53). */
export function checkUserAddress(addr: unknown, what: string): void {
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0) {
    throw new InvalidUserAccessError(
      `${what}: the address must be a whole number from 0 to 2^53 - 1, got ${describe(addr)}`,
    );
  }
}

/**
 * Throws {@link InvalidUserAccessError} unless `value` is a whole number (a safe integer); a store keeps its
 * low 8 bits, as `movb` stores the low byte of a register.
 */
export function checkByte(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidUserAccessError(
      `${what}: the value must be a whole number (its low 8 bits are stored), got ${describe(value)}`,
    );
  }
}

/** Throws {@link InvalidUserAccessError} unless `len` is a whole number from 0 to 2^32. */
export function checkLength(len: unknown, what: string): void {
  if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 0 || len > 2 ** 32) {
    throw new InvalidUserAccessError(
      `${what}: the length must be a whole number from 0 to 2^32, got ${describe(len)}`,
    );
  }
}

function describe(v: unknown): string {
  if (typeof v === 'bigint') return `the bigint ${v}n (pass a number)`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return String(v);
}
