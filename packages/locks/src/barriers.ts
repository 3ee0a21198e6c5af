import { fence, type Kernel } from '@spf/machine';

/**
 * `smp_mb()`: a full barrier, MFENCE (or a locked instruction) on x86. Costs a fence.
 */
export function* smpMb(): Kernel<void> {
  yield* fence();
}

/**
 * `smp_rmb()`: orders loads before later loads. On x86 (TSO) loads are never reordered with other loads,
 * so this is only a compiler barrier and costs nothing; the machine performs memory effects in program
 * order. It is called where the kernel has one, so the code reads like the kernel's.
 */
export function* smpRmb(): Kernel<void> {}

/** `smp_wmb()`: orders stores before later stores; a compiler barrier on x86, as {@link smpRmb}. */
export function* smpWmb(): Kernel<void> {}
