import type { CostModel } from '@spf/machine';
import type { PhysicalMemory } from '@spf/pagetable';
import type { MemoryEnv } from '@spf/vma';
import { VmStat } from './fault-counters.js';
import type { PteFaultPaths } from './pte-fault-paths.js';
import type { UserFaultPaths } from './user-fault-paths.js';

/**
 * The system-wide configuration every fault handler runs with: @spf/vma's {@link MemoryEnv} (physical
 * memory, the cost model, `pteSpecial`: shared with the syscalls' page-table code, so both charge and count
 * alike) plus the switches only faults consult.
 */
export interface FaultEnv extends MemoryEnv {
  /**
   * Map the shared zero page on read faults of private anonymous memory (`!mm_forbids_zeropage()`). Only
   * effective when `mem` has a zero page. Off models a kernel that, like the Linux 6.18 VM this project is
   * developed on, allocates a fresh page on every read fault.
   */
  readonly useZeroPage: boolean;
  /** Event counters (pgfault, pgmajfault, ...). */
  readonly vmstat: VmStat;
  /**
   * Every mm of the system frees its page tables under `mm->page_table_lock` (@spf/vma's
   * `MmConfig.freePgtablesUnderPtl`, Lespinasse's question 3), so a fault holding that lock may allocate
   * page tables without mmap_lock. Default false, as in Linux.
   */
  readonly freePgtablesUnderPtl: boolean;
  /**
   * `do_anonymous_page()` and `do_wp_page()` to run instead of this package's (an injection point, set by
   * `withPteFaultPaths()`); absent: the package's own.
   */
  readonly pteFaultPaths?: PteFaultPaths;
  /**
   * The retry loop of `do_user_addr_fault()` and `mm_account_fault()` to run instead of this package's (an
   * injection point, set by `withUserFaultPaths()`); absent: the package's own.
   */
  readonly userFaultPaths?: UserFaultPaths;
  /**
   * `fault_around_bytes` (debugfs, default 64 KiB): the window `do_fault_around()` maps around a read
   * fault of a file page. Absent means the default.
   */
  readonly faultAroundBytes?: number;
  /**
   * `vmf_anon_prepare()` as Linux 6.7 to 6.9 had it: a fault holding only a per-VMA lock that needs an
   * anon_vma always drops the lock and returns VM_FAULT_RETRY (the fault is redone under mmap_lock). Absent
   * or false: Linux 6.10 and later, which first tries `mmap_read_trylock()` and prepares the anon_vma
   * under it. Set by @spf/fault-spec's `perVmaLock({ vmfAnonPrepareTrylock: false })`.
   */
  readonly vmfAnonPrepareAlwaysRetry?: boolean;
}

/** Linux's default `fault_around_bytes`: 64 KiB (16 pages). */
export const DEFAULT_FAULT_AROUND_BYTES = 65536;

/** Options of {@link makeFaultEnv}. */
export interface FaultEnvOptions {
  readonly mem: PhysicalMemory;
  readonly cost: CostModel;
  /** Default true (effective only when `mem` has a zero page). */
  readonly useZeroPage?: boolean;
  /** Default true, as on x86-64. */
  readonly pteSpecial?: boolean;
  readonly vmstat?: VmStat;
  /** Default false. */
  readonly freePgtablesUnderPtl?: boolean;
  /** Every mm frees page-table pages by RCU (@spf/vma's `MmConfig.pgtableFreeRcu`); default false. */
  readonly pgtableFreeRcu?: boolean;
  /** `do_anonymous_page()` and `do_wp_page()` to run instead of the package's (default: the package's). */
  readonly pteFaultPaths?: PteFaultPaths;
  /** `fault_around_bytes`; default 64 KiB. A value below 8 KiB turns fault-around off. */
  readonly faultAroundBytes?: number;
}

/** Builds a {@link FaultEnv} with Linux's x86-64 defaults. */
export function makeFaultEnv(opts: FaultEnvOptions): FaultEnv {
  return {
    mem: opts.mem,
    cost: opts.cost,
    useZeroPage: (opts.useZeroPage ?? true) && opts.mem.zeroPfn >= 0,
    pteSpecial: opts.pteSpecial ?? true,
    vmstat: opts.vmstat ?? new VmStat(),
    freePgtablesUnderPtl: opts.freePgtablesUnderPtl ?? false,
    pgtableFreeRcu: opts.pgtableFreeRcu ?? false,
    ...(opts.pteFaultPaths ? { pteFaultPaths: opts.pteFaultPaths } : {}),
    faultAroundBytes: opts.faultAroundBytes ?? DEFAULT_FAULT_AROUND_BYTES,
  };
}
