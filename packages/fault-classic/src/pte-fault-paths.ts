import type { Kernel } from '@spf/machine';
import { doAnonymousPage } from './do-anonymous-page.js';
import { doWpPage } from './do-wp-page.js';
import type { FaultEnv } from './fault-env.js';
import type { FaultHandlerFactory } from './fault-handler.js';
import type { ClassicVmFault } from './vm-fault.js';

/**
 * The two PTE-level handlers `handle_pte_fault()` dispatches to for anonymous memory: `do_anonymous_page()`
 * (a first touch: the PTE is none and the VMA has no vm_ops) and `do_wp_page()` (a write to a present,
 * write-protected PTE). An injection point: a system built with {@link withPteFaultPaths} runs these instead
 * of this package's {@link doAnonymousPage} and {@link doWpPage} (Lab 3 of the course plugs the student's
 * versions in here). Both receive the vm_fault exactly as the built-in ones do and return VM_FAULT_* bits:
 * `doAnonymousPage` with no lock held, `doWpPage` with the PTE lock held in `vmf.ptl` (it must release it).
 */
export interface PteFaultPaths {
  doAnonymousPage(vmf: ClassicVmFault): Kernel<number>;
  doWpPage(vmf: ClassicVmFault): Kernel<number>;
}

/** This package's own paths ({@link doAnonymousPage}, {@link doWpPage}): what runs when none are injected. */
export const builtinPteFaultPaths: PteFaultPaths = { doAnonymousPage, doWpPage };

/**
 * A fault-handler factory whose handler runs `paths` for anonymous first touches and write-protect faults:
 * `factory` (the classic handler, or any design that ends in `handle_pte_fault()`) gets the system's
 * environment with `pteFaultPaths` set. Everything else (the VMA lookup, the locking, file faults, the
 * accounting) stays the package's own. Pass the result as `boot({ faultHandler })` of @spf/kernel.
 */
export function withPteFaultPaths(factory: FaultHandlerFactory, paths: PteFaultPaths): FaultHandlerFactory {
  return (env: FaultEnv) => factory({ ...env, pteFaultPaths: paths });
}
