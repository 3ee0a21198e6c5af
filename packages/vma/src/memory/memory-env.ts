import { type CostModel, defaultCostModel } from '@spf/machine';
import type { PhysicalMemory } from '@spf/pagetable';

/**
 * Event counters the shared memory mechanics bump (a subset of /proc/vmstat's `enum vm_event_item`).
 * @spf/fault-classic's `VmStat` has these fields and more.
 */
export interface MemoryEvents {
  /** Data pages allocated for user memory (anonymous, COW copies, shmem). */
  pgalloc: number;
  /** Page-table pages allocated (by faults and by the syscalls that build page tables: fork, mremap). */
  pgtableAlloc: number;
}

/**
 * What the mm.h / memory.c mechanics shared by faults and syscalls need to know about the system: the
 * physical memory, the cost of clearing a page, and the `CONFIG_ARCH_HAS_PTE_SPECIAL` switch. One object
 * per booted system, handed to every mm's page tables ({@link PagetableOpsOptions.env}) and extended by
 * @spf/fault-classic's `FaultEnv`, so a fault and a syscall charge the same costs and count the same events.
 */
export interface MemoryEnv {
  /** Physical memory shared by every mm of the system (its zero page, if any, is the shared zero page). */
  readonly mem: PhysicalMemory;
  /** Latencies: `zeroPage` is charged for every page (data or page table) the kernel clears. */
  readonly cost: CostModel;
  /**
   * `CONFIG_ARCH_HAS_PTE_SPECIAL`: zero-page and PFN-map PTEs carry the special bit, so `vm_normal_page()`
   * needs nothing but the PTE. Off, it reads `vm_flags`, `vm_start` and `vm_pgoff` instead.
   */
  readonly pteSpecial: boolean;
  /** Event counters. */
  readonly vmstat: MemoryEvents;
  /**
   * How every mm of the system frees its page tables: under `mm->page_table_lock` as well as the mmap lock
   * (`MmConfig.freePgtablesUnderPtl`), and after an RCU grace period (`MmConfig.pgtableFreeRcu`). A booted
   * system gives its mms the same values; lockless fault handlers read them here to refuse designs whose
   * page-table walk would be unsafe against that free side. Absent means false.
   */
  readonly freePgtablesUnderPtl?: boolean;
  readonly pgtableFreeRcu?: boolean;
}

/** Options of {@link makeMemoryEnv}. */
export interface MemoryEnvOptions {
  readonly mem: PhysicalMemory;
  /** Default: the machine's default cost model. */
  readonly cost?: CostModel;
  /** Default true, as on x86-64. */
  readonly pteSpecial?: boolean;
  readonly vmstat?: MemoryEvents;
  /** Default false. */
  readonly freePgtablesUnderPtl?: boolean;
  /** Default false. */
  readonly pgtableFreeRcu?: boolean;
}

/** Builds a {@link MemoryEnv} with Linux's x86-64 defaults. */
export function makeMemoryEnv(opts: MemoryEnvOptions): MemoryEnv {
  return {
    mem: opts.mem,
    cost: opts.cost ?? defaultCostModel,
    pteSpecial: opts.pteSpecial ?? true,
    vmstat: opts.vmstat ?? { pgalloc: 0, pgtableAlloc: 0 },
    freePgtablesUnderPtl: opts.freePgtablesUnderPtl ?? false,
    pgtableFreeRcu: opts.pgtableFreeRcu ?? false,
  };
}
