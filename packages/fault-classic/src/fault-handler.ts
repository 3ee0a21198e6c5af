import type { Kernel } from '@spf/machine';
import type { MmConfig, MmStruct } from '@spf/vma';
import type { TaskFaultCounters } from './fault-counters.js';
import type { FaultEnv } from './fault-env.js';

/** si_code of a SIGSEGV from a page fault (include/uapi/asm-generic/siginfo.h). */
export type SegvCode = 'MAPERR' | 'ACCERR' | 'PKUERR';

/** One user-mode page fault as the hardware reports it: the #PF error code and CR2. */
export interface UserFault {
  /** The faulting task's address space (its page tables are `mm.pgd`). */
  readonly mm: MmStruct;
  /** CR2: the faulting linear address. */
  readonly address: number;
  /** The #PF error code (`X86_PF_*`: P, W, U, RSVD, I, PK bits of @spf/pagetable's PF_* constants). */
  readonly errorCode: number;
  /** The task's min_flt/maj_flt counters, or null to count only system-wide. */
  readonly task: TaskFaultCounters | null;
  /**
   * Whether a signal is pending for the faulting task (`signal_pending(current)`; for a user-mode fault
   * any pending signal counts, fatal or not). Asked only after the handler dropped the mmap lock with
   * VM_FAULT_RETRY; absent means never.
   */
  readonly signalPending?: () => boolean;
}

/**
 * What became of a fault: the page is now mapped (retry the access), or the task gets a signal
 * (SIGSEGV with its si_code, SIGBUS), or the system is out of memory (`pagefault_out_of_memory()`: the OOM
 * killer; here the task is killed), or the fault was abandoned because a signal is pending
 * (`fault_signal_pending()`): go back to user mode, where the signal is delivered; a task that survives it
 * runs the access again, and it faults again.
 */
export type FaultOutcome =
  | { readonly kind: 'handled' }
  | { readonly kind: 'signal-pending' }
  | { readonly kind: 'sigsegv'; readonly code: SegvCode; readonly address: number }
  | { readonly kind: 'sigbus'; readonly address: number }
  | { readonly kind: 'oom'; readonly address: number };

/**
 * A page-fault handler: the x86 `exc_page_fault()` entry for user-mode faults through to the mapped page.
 * The classic handler ({@link ClassicFaultHandler}) is the default; the speculative designs implement the
 * same interface (falling back to the classic path), and `boot({ faultHandler })` of @spf/kernel accepts a
 * factory of any of them.
 */
export interface FaultHandler {
  /** A short name for reports and benchmark tables (`classic`, `dufour`, `lespinasse`, `pervma`). */
  readonly name: string;
  /**
   * The design's own event counters, named as the original names them (v12's `spf_vma_changed`, 6.4's
   * `VMA_LOCK_SUCCESS`, ...). Absent for the classic handler.
   */
  readonly counters?: Readonly<Record<string, number>>;
  /**
   * What the design needs every address space of the system to do differently, as a kernel built with the
   * design's config option does: Dufour's SPF v12 asks for `spfV12` (mm_seq around tree updates, VMAs
   * unlinked through `vm_rcu_put()`); the per-VMA-lock design passes its writer-side switches as
   * `vmaLocking` (a `vma_start_write()` site removed for an experiment); a design that speculates on file VMAs
   * names the `vmFileRelease` it was posted with (a boot's own `vmFileRelease` wins over it). @spf/kernel's `boot()` adds it to
   * the config of every mm it creates (a fork's child inherits it). Absent: nothing changes.
   */
  readonly mmConfig?: Readonly<Pick<MmConfig, 'spfV12' | 'vmaLocking' | 'vmFileRelease'>>;
  /** How the lockless attempts went so far (absent for the classic handler, which makes none). */
  speculativeStats?(): SpeculativeStats;
  /** Handles one user-mode #PF on the current CPU. Runs in the faulting task's context. */
  handleUserFault(fault: UserFault): Kernel<FaultOutcome>;
}

/**
 * A summary every lockless design gives in the same shape, for tables that compare designs: how many faults
 * tried the lockless path, how many it finished, and why the others fell back to mmap_lock (reason names are
 * the design's own counter names).
 */
export interface SpeculativeStats {
  readonly attempts: number;
  readonly handled: number;
  readonly aborts: Readonly<Record<string, number>>;
}

/** Builds a fault handler for a booted system. */
export type FaultHandlerFactory = (env: FaultEnv) => FaultHandler;
