import {
  doUserAddrFault,
  FAULT_FLAG_SPECULATIVE,
  type FaultEnv,
  type FaultHandler,
  type FaultHandlerFactory,
  type FaultOutcome,
  type LocklessFaultResult,
  mmAccountFault,
  type SpeculativeStats,
  type UserFault,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { call, type Kernel } from '@spf/machine';
import { PF_PK } from '@spf/pagetable';
import type { MmConfig, MmStruct } from '@spf/vma';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';
import { DUFOUR_ALL_CHECKS, DUFOUR_CHECKS, type DufourChecks } from './dufour-checks.js';
import { DUFOUR_ABORT_REASONS, type DufourCounters, makeDufourCounters } from './dufour-counters.js';
import { handleSpeculativeFault, type SpeculativeFaultContext } from './handle-speculative-fault.js';

/** Options of {@link dufourSpf}. */
export interface DufourSpfOptions {
  /**
   * Patch 22's shortcut: a fault of an mm with a single user (`mm_users == 1`: one thread) does not try the
   * speculative path, which only pays off when other threads may hold mmap_lock. Default true, as posted.
   */
  readonly singleThreadShortcut?: boolean;
  /**
   * Question 3: allocate a missing upper page-table level speculatively, under `mm->page_table_lock` after
   * re-validating the VMA under it. Requires `boot({ freePgtablesUnderPtl: true })`. Default false (v12 never
   * allocates page tables speculatively).
   */
  readonly specPgtableAlloc?: boolean;
  /**
   * Question 4: run on a system without `pte_special` (`boot({ pteSpecial: false })`), which v12 refuses
   * (it depends on ARCH_HAS_PTE_SPECIAL). Only for showing why. Default false.
   */
  readonly unsafeWithoutPteSpecial?: boolean;
  /**
   * Question 2, the 2019 proposal (Lespinasse's review of v12: "would file-backed mappings work if the vma
   * refcount held the file and vm_file were released in __free_vma()?"): file VMAs (of a type whose
   * `vm_ops` allow speculation: @spf/file-backed's files) are handled speculatively. The reference
   * `get_vma()` takes keeps `vm_file` alive, so the handler asks every mm to release it in `__free_vma()`
   * (`mmConfig.vmFileRelease: 'freeVma'`; a boot's own `vmFileRelease` wins, and with `'removeVma'` file VMAs
   * are not speculated: `spf_file_release`). Read faults run fault-around and `filemap_fault()` on cached
   * pages only (no I/O, no sleep: a miss, a locked or PG_readahead page falls back to the classic path, which
   * reads); private writes copy a cached page if the VMA has an anon_vma; shared writes (`->page_mkwrite`)
   * always fall back. A page is mapped only if `vma_has_changed()` is false under the PTE lock. Default
   * false: v12 as posted aborts on file VMAs.
   */
  readonly fileVmas?: boolean;
  /**
   * Make `find_vma_rcu()` walk Linux 5.1's VMA rbtree, updated in place one store at a time (@spf/vma's
   * `MmConfig.spfV12.rbtree`): what v12 ran on, where a lockless walk that runs between the stores of a
   * rotation can miss a VMA that is in the tree all along, so `mm->mm_seq` (check `mmSeqRetry`) is needed
   * for a right answer. Default false: the substrate's tree is the maple-like copy-on-write B+tree for every
   * design (published with one store, never seen half-updated), and the default costs and schedules stay
   * those of that tree.
   */
  readonly rbtreeLookup?: boolean;
  /** The safety checks, each on by default ({@link DufourChecks}). */
  readonly checks?: Partial<DufourChecks>;
  /**
   * The speculative attempt to run instead of this package's {@link handleSpeculativeFault} (an injection
   * point: Lab 4 of the course plugs the student's in here). Default: the package's.
   */
  readonly paths?: DufourSpfPaths;
}

/**
 * What {@link DufourSpfHandler} runs before mmap_lock: `handle_speculative_fault()`. It receives the
 * handler's context (environment, checks, counters), the mm, the faulting address, the #PF error code and
 * the FAULT_FLAG_* bits with FAULT_FLAG_SPECULATIVE, and returns the `handle_mm_fault()`-style result, or
 * VM_FAULT_RETRY to fall back to the classic path. It must leave no lock held and interrupts as it found
 * them.
 */
export interface DufourSpfPaths {
  handleSpeculativeFault(
    ctx: SpeculativeFaultContext,
    mm: MmStruct,
    address: number,
    errorCode: number,
    flags: number,
  ): Kernel<number>;
}

/**
 * Dufour's speculative page fault, v12 as posted in April 2019 ("[PATCH v12 00/31] Speculative page
 * faults"): the x86 entry (`do_user_addr_fault()` of @spf/fault-classic) first tries
 * {@link handleSpeculativeFault} without mmap_lock; VM_FAULT_RETRY from it falls through to the classic path
 * with the original flags. Counters under v12's names ({@link DufourCounters}).
 */
export class DufourSpfHandler implements FaultHandler {
  readonly name = 'dufour';
  readonly counters: Readonly<DufourCounters>;
  readonly mmConfig: Readonly<Pick<MmConfig, 'spfV12' | 'vmFileRelease'>>;
  readonly checks: DufourChecks;
  private readonly live: DufourCounters;
  private attempts = 0;
  private readonly singleThreadShortcut: boolean;
  private readonly specPgtableAlloc: boolean;
  /** File VMAs are handled speculatively (the 2019 proposal, {@link DufourSpfOptions.fileVmas}). */
  readonly fileVmas: boolean;
  private readonly paths: DufourSpfPaths;
  /** What every attempt hands to `handle_speculative_fault()`: built once, not per fault. */
  private readonly context: SpeculativeFaultContext;
  /** {@link DufourSpfHandler.attempt} bound once, the lockless attempt handed to every `doUserAddrFault()`. */
  private readonly lockless = (fault: UserFault, flags: number): Kernel<LocklessFaultResult> =>
    this.attempt(fault, flags);

  constructor(
    readonly env: FaultEnv,
    options: DufourSpfOptions = {},
  ) {
    this.checks = validateDufourOptions(env, options);
    this.singleThreadShortcut = options.singleThreadShortcut ?? true;
    this.specPgtableAlloc = options.specPgtableAlloc ?? false;
    this.fileVmas = options.fileVmas ?? false;
    this.paths = options.paths ?? { handleSpeculativeFault };
    this.live = makeDufourCounters();
    this.counters = this.live;
    this.context = Object.freeze({
      env: this.env,
      checks: this.checks,
      counters: this.live,
      specPgtableAlloc: this.specPgtableAlloc,
      fileVmas: this.fileVmas,
    });
    const spfV12 =
      options.rbtreeLookup === true
        ? { rcuPut: this.checks.rcuFreeVma, rbtree: true }
        : { rcuPut: this.checks.rcuFreeVma };
    this.mmConfig =
      this.fileVmas && this.checks.vmFileLifetime ? { spfV12, vmFileRelease: 'freeVma' } : { spfV12 };
  }

  handleUserFault(fault: UserFault): Kernel<FaultOutcome> {
    return doUserAddrFault(this.env, fault, this.lockless);
  }

  speculativeStats(): SpeculativeStats {
    const aborts: Record<string, number> = {};
    for (const r of DUFOUR_ABORT_REASONS) aborts[r] = this.live[r];
    return { attempts: this.attempts, handled: this.live.speculative_pgfault, aborts };
  }

  /**
   * The speculative block of v12's x86 `__do_page_fault()`: skip it for protection-key faults and, with
   * the shortcut, for single-user mms; otherwise try `handle_speculative_fault()` and account a finished
   * fault as the classic path would.
   */
  private *attempt(fault: UserFault, flags: number): Kernel<LocklessFaultResult> {
    if ((fault.errorCode & PF_PK) !== 0) return { kind: 'fallback', flags };
    if (this.singleThreadShortcut && (yield* fault.mm.mmUsers.load()) === 1)
      return { kind: 'fallback', flags };
    this.attempts++;
    const specFlags = flags | FAULT_FLAG_SPECULATIVE;
    const ret = yield* call(
      this.paths.handleSpeculativeFault(this.context, fault.mm, fault.address, fault.errorCode, specFlags),
    );
    if ((ret & VM_FAULT_RETRY) !== 0) return { kind: 'fallback', flags };
    this.live.speculative_pgfault++;
    mmAccountFault(this.env, fault.task, flags, ret);
    return { kind: 'done', ret };
  }
}

/**
 * Checks the options against the system, as a kernel refusing to boot would, and returns the switches.
 * Throws {@link FaultSpecConfigError} naming the options and the reason.
 */
export function validateDufourOptions(env: FaultEnv, options: DufourSpfOptions): DufourChecks {
  checkNames(options);
  const checks: Record<string, boolean> = { ...DUFOUR_ALL_CHECKS };
  for (const [k, v] of Object.entries(options.checks ?? {})) {
    if (typeof v !== 'boolean') {
      throw new FaultSpecConfigError(
        'dufour',
        [`checks.${k}: ${String(v)}`],
        'each check is true (on) or false (off)',
      );
    }
    checks[k] = v;
  }
  for (const k of [
    'singleThreadShortcut',
    'specPgtableAlloc',
    'unsafeWithoutPteSpecial',
    'fileVmas',
    'rbtreeLookup',
  ] as const) {
    const v = options[k];
    if (v !== undefined && typeof v !== 'boolean') {
      throw new FaultSpecConfigError('dufour', [`${k}: ${String(v)}`], `${k} is a boolean`);
    }
  }
  if (!env.pteSpecial && options.unsafeWithoutPteSpecial !== true) {
    throw new FaultSpecConfigError(
      'dufour',
      ['pteSpecial: false'],
      'SPF v12 requires ARCH_HAS_PTE_SPECIAL: without it vm_normal_page() reads vm_flags, vm_start and vm_pgoff of a VMA the speculative fault does not hold stable; boot with pteSpecial: true, or pass unsafeWithoutPteSpecial: true to study the race',
    );
  }
  if (env.pteSpecial && options.unsafeWithoutPteSpecial === true) {
    throw new FaultSpecConfigError(
      'dufour',
      ['unsafeWithoutPteSpecial: true', 'pteSpecial: true'],
      'unsafeWithoutPteSpecial only has a meaning on a system booted with pteSpecial: false; drop one of the two',
    );
  }
  if (options.specPgtableAlloc === true && !env.freePgtablesUnderPtl) {
    throw new FaultSpecConfigError(
      'dufour',
      ['specPgtableAlloc: true', 'freePgtablesUnderPtl: false'],
      'a speculative fault may only allocate page tables under mm->page_table_lock if unmapping frees them under that lock too; boot with freePgtablesUnderPtl: true',
    );
  }
  return Object.freeze(checks) as unknown as DufourChecks;
}

/**
 * The factory `boot({ faultHandler })` takes for Dufour's SPF v12: `dufourSpf()` is the series as posted;
 * options switch its safety checks off one by one, add Lespinasse's question 3 (`specPgtableAlloc`) or allow
 * a system without pte_special (question 4). Throws {@link FaultSpecConfigError} for unsafe or contradictory
 * options.
 */
export function dufourSpf(options: DufourSpfOptions = {}): FaultHandlerFactory {
  checkNames(options); // what does not depend on the system fails at once, where it is written
  return (env: FaultEnv) => new DufourSpfHandler(env, options);
}

/** The option names {@link dufourSpf} takes. */
const DUFOUR_OPTIONS = [
  'singleThreadShortcut',
  'specPgtableAlloc',
  'unsafeWithoutPteSpecial',
  'fileVmas',
  'rbtreeLookup',
  'checks',
  'paths',
] as const;

/**
 * Refuses option and check names that do not exist (a typo would otherwise leave a check on, or an
 * option at its default, silently).
 */
function checkNames(options: DufourSpfOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new FaultSpecConfigError('dufour', ['options'], 'must be an object of option names to values');
  }
  for (const k of Object.keys(options)) {
    if (!(DUFOUR_OPTIONS as readonly string[]).includes(k)) {
      throw new FaultSpecConfigError(
        'dufour',
        [k],
        `no such option; the options are ${DUFOUR_OPTIONS.join(', ')}`,
      );
    }
  }
  if (options.paths !== undefined && typeof options.paths?.handleSpeculativeFault !== 'function') {
    throw new FaultSpecConfigError(
      'dufour',
      ['paths'],
      'must be an object with a handleSpeculativeFault generator function',
    );
  }
  if (options.checks !== undefined && (typeof options.checks !== 'object' || options.checks === null)) {
    throw new FaultSpecConfigError('dufour', ['checks'], 'must be an object of check names to booleans');
  }
  const known = new Set<string>(DUFOUR_CHECKS.map((c) => c.name));
  for (const k of Object.keys(options.checks ?? {})) {
    if (!known.has(k)) {
      throw new FaultSpecConfigError(
        'dufour',
        [`checks.${k}`],
        `there is no such check; the checks are ${[...known].join(', ')}`,
      );
    }
  }
}
