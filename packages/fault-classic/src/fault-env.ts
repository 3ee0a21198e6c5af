import type { CostModel } from '@spf/machine';
import type { PhysicalMemory } from '@spf/pagetable';
import { VmStat } from './fault-counters.js';

/**
 * The system-wide configuration every fault handler runs with: physical memory, the cost model, and the
 * switches that select which Linux behaviour is modelled.
 */
export interface FaultEnv {
  /** Physical memory the pages come from (its zero page, if any, is the shared zero page). */
  readonly mem: PhysicalMemory;
  /** Latencies charged for clearing and copying pages. */
  readonly cost: CostModel;
  /**
   * Map the shared zero page on read faults of private anonymous memory (`!mm_forbids_zeropage()`). Only
   * effective when `mem` has a zero page. Off models a kernel that, like the Linux 6.18 VM this project is
   * developed on, allocates a fresh page on every read fault.
   */
  readonly useZeroPage: boolean;
  /**
   * `CONFIG_ARCH_HAS_PTE_SPECIAL`: mark zero-page and PFN-map PTEs with the special bit so `vm_normal_page()`
   * needs nothing but the PTE. Off, it falls back to the `vm_start`/`vm_pgoff` checks (the reads that SPF's
   * question 4 is about).
   */
  readonly pteSpecial: boolean;
  /** Event counters (pgfault, pgmajfault, ...). */
  readonly vmstat: VmStat;
}

/** Options of {@link makeFaultEnv}. */
export interface FaultEnvOptions {
  readonly mem: PhysicalMemory;
  readonly cost: CostModel;
  /** Default true (effective only when `mem` has a zero page). */
  readonly useZeroPage?: boolean;
  /** Default true, as on x86-64. */
  readonly pteSpecial?: boolean;
  readonly vmstat?: VmStat;
}

/** Builds a {@link FaultEnv} with Linux's x86-64 defaults. */
export function makeFaultEnv(opts: FaultEnvOptions): FaultEnv {
  return {
    mem: opts.mem,
    cost: opts.cost,
    useZeroPage: (opts.useZeroPage ?? true) && opts.mem.zeroPfn >= 0,
    pteSpecial: opts.pteSpecial ?? true,
    vmstat: opts.vmstat ?? new VmStat(),
  };
}
