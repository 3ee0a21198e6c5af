import { KernelFault } from '@spf/machine';

/**
 * Typed errors of @spf/pagetable. Every one is thrown before any state changes, so a failed call leaves
 * physical memory, the allocator and the page tables exactly as they were.
 */

/** Base class of the package's argument errors (bad input from a caller, not a simulated kernel bug). */
export class PagetableError extends Error {
  override name = 'PagetableError';
}

/** A virtual address is not canonical for the paging mode (bits 63:47, or 63:56 with LA57, differ). */
export class NonCanonicalAddressError extends PagetableError {
  override name = 'NonCanonicalAddressError';
}

/** An address or size is not aligned to the page size it is used with. */
export class MisalignedAddressError extends PagetableError {
  override name = 'MisalignedAddressError';
}

/** A physical address or frame number lies outside installed memory or above MAXPHYADDR. */
export class PhysicalAddressError extends PagetableError {
  override name = 'PhysicalAddressError';
}

/** A configuration or argument value is out of its documented range. */
export class InvalidArgumentError extends PagetableError {
  override name = 'InvalidArgumentError';
}

/**
 * Software set a control bit (CR4.LA57, CR4.SMEP, IA32_EFER.NXE, ...) or used an instruction (INVPCID) that the
 * CPU's features (`Mmu({ cpuFeatures })`) do not include. Real hardware raises #GP(0) (or #UD for INVPCID)
 * and leaves the register unchanged; here the write throws this error and changes nothing.
 */
export class UnsupportedCpuFeatureError extends PagetableError {
  override name = 'UnsupportedCpuFeatureError';
  constructor(
    message: string,
    /** The missing feature (a key of `CpuFeatures`). */
    readonly feature: string,
  ) {
    super(message);
  }
}

/** A mapping request collides with an existing mapping (or a huge page covers the range). */
export class MappingConflictError extends PagetableError {
  override name = 'MappingConflictError';
}

/** The buddy allocator has no free block of the requested order. */
export class OutOfMemoryError extends PagetableError {
  override name = 'OutOfMemoryError';
  constructor(
    message: string,
    /** The order that could not be satisfied. */
    readonly order: number,
  ) {
    super(message);
  }
}

/**
 * A frame was freed twice, or freed with the wrong order, or a reserved frame was freed. It is a
 * {@link KernelFault} so that kernel code running on a Machine stops with a report and a replayable schedule.
 */
export class DoubleFreeError extends KernelFault {
  override name = 'DoubleFreeError';
  constructor(message: string) {
    super('double-free', message);
  }
}

/** A frame was freed with an order or address that does not match how it was allocated. */
export class InvalidFreeError extends KernelFault {
  override name = 'InvalidFreeError';
  constructor(message: string) {
    super('invalid-free', message);
  }
}

/** An access touched a frame that was never allocated (a wild pointer or entry), or lies beyond RAM. */
export class WildAccessError extends KernelFault {
  override name = 'WildAccessError';
  constructor(message: string) {
    super('wild-access', message);
  }
}

/** Something wrote to the shared zero page, which must stay all zeroes. */
export class ZeroPageWriteError extends KernelFault {
  override name = 'ZeroPageWriteError';
  constructor(message: string) {
    super('zero-page-write', message);
  }
}
