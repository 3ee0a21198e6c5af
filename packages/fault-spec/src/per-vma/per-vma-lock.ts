import {
  accessError,
  doUserAddrFault,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_USER,
  FAULT_FLAG_VMA_LOCK,
  type FaultEnv,
  type FaultHandler,
  type FaultHandlerFactory,
  type FaultOutcome,
  handleMmFault,
  type LocklessFaultResult,
  type SpeculativeStats,
  type UserFault,
  VM_FAULT_COMPLETED,
  VM_FAULT_MAJOR,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { call, type Kernel } from '@spf/machine';
import { PF_PK } from '@spf/pagetable';
import {
  type MmConfig,
  type MmStruct,
  VMA_START_WRITE_SITES,
  type VmArea,
  type VmaLockingOptions,
  type VmaStartWriteSite,
  type VmaWriteLockPaths,
  vmaEndRead,
} from '@spf/vma';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';
import { lockVmaUnderRcu } from './lock-vma-under-rcu.js';
import {
  isPerVmaLockCheck,
  PER_VMA_LOCK_CHECKS,
  type PerVmaLockCheck,
  type PerVmaReaderCheck,
} from './per-vma-checks.js';
import { newPerVmaLockCounters, type PerVmaLockCounters } from './per-vma-counters.js';

/** Options of {@link perVmaLock}. Every field is optional; the defaults are Linux 6.4 with its 6.4.y fixes. */
export interface PerVmaLockOptions {
  /** Each safety check of {@link PER_VMA_LOCK_CHECKS} (all true by default). */
  readonly checks?: Partial<Readonly<Record<PerVmaLockCheck, boolean>>>;
  /**
   * `vma_start_write()` on every parent VMA in `dup_mmap()` (the 6.4.y fix of the fork race: a COW fault in
   * the parent under the VMA lock while fork copies the VMA's page tables). Default true. The same switch as
   * `checks['vmaStartWrite.dupMmap']`; giving both with different values is refused.
   */
  readonly dupMmapStartWrite?: boolean;
  /**
   * Linux 6.7's file support: file-backed (and shmem) VMAs are taken under the VMA lock too, so read,
   * COW and shared file faults run without mmap_lock; a COW without an anon_vma prepares it in
   * `vmf_anon_prepare()` (see {@link vmfAnonPrepareTrylock}), and waiting for I/O drops the VMA lock and
   * returns VM_FAULT_RETRY. Default false (6.4: anonymous VMAs only). Anonymous VMAs still need their
   * anon_vma either way.
   */
  readonly fileVmas?: boolean;
  /**
   * `vmf_anon_prepare()` of Linux 6.10 and later (what the reference host runs): a fault under the VMA lock
   * that needs an anon_vma (a COW of a file page, with `fileVmas`) tries `mmap_read_trylock()` and prepares
   * it there, retrying under mmap_lock only if mmap_lock is contended. Default true. False models Linux 6.7
   * to 6.9, where it always dropped the VMA lock and returned VM_FAULT_RETRY. (Under 6.4's limits, without
   * `fileVmas`, no fault under the VMA lock lacks an anon_vma, so this changes nothing there.)
   */
  readonly vmfAnonPrepareTrylock?: boolean;
  /**
   * Code to run instead of this package's (an injection point: Lab 5 of the course plugs the student's in
   * here). Each member is optional; a missing one is the package's. With a `lockVmaUnderRcu` the reader
   * checks of `checks` do not apply (the replacement has its own); the writer paths run at the
   * `vma_start_write()` sites the checks leave on.
   */
  readonly paths?: PerVmaLockPaths;
}

/** What a replacement `lock_vma_under_rcu()` receives besides the mm and the address. */
export interface PerVmaLockContext {
  /** The handler's events: a replacement counts VMA_LOCK_ABORT and VMA_LOCK_MISS itself, as 6.4's does. */
  readonly counters: PerVmaLockCounters;
  /** File VMAs may be taken too ({@link PerVmaLockOptions.fileVmas}, Linux 6.7). */
  readonly fileVmas: boolean;
}

/**
 * The per-VMA-lock design's replaceable code ({@link PerVmaLockOptions.paths}):
 * - `lockVmaUnderRcu(ctx, mm, address)`: `lock_vma_under_rcu()`, returning the VMA containing `address`
 *   read-locked (the fault then runs under it and the handler calls `vma_end_read()`), or null to take
 *   mmap_lock. It must leave the RCU read section it enters.
 * - `vmaStartWrite(vma, site)` and `vmaEndWriteAll(mm)`: the writer side, run by @spf/vma's syscalls (see
 *   @spf/vma's `VmaWriteLockPaths`); the handler hands them to every mm through `mmConfig.vmaLocking.paths`.
 */
export interface PerVmaLockPaths extends VmaWriteLockPaths {
  readonly lockVmaUnderRcu?: (ctx: PerVmaLockContext, mm: MmStruct, address: number) => Kernel<VmArea | null>;
}

const OPTION_NAMES = new Set(['checks', 'dupMmapStartWrite', 'fileVmas', 'paths', 'vmfAnonPrepareTrylock']);
const PATH_NAMES = ['lockVmaUnderRcu', 'vmaStartWrite', 'vmaEndWriteAll'];

/** Every check with its value once the defaults are filled in. */
export type PerVmaLockChecks = Readonly<Record<PerVmaLockCheck, boolean>>;

/**
 * Checks {@link PerVmaLockOptions} and fills in the defaults. Throws {@link FaultSpecConfigError} for an
 * unknown option or check, a non-boolean switch, or `dupMmapStartWrite` contradicting
 * `checks['vmaStartWrite.dupMmap']`.
 */
export function resolvePerVmaLockOptions(options: PerVmaLockOptions = {}): PerVmaLockChecks {
  if (typeof options !== 'object' || options === null) {
    throw new FaultSpecConfigError(
      'pervma',
      ['options'],
      `options must be an object, got ${String(options)}`,
    );
  }
  for (const k of Object.keys(options)) {
    if (!OPTION_NAMES.has(k)) {
      throw new FaultSpecConfigError(
        'pervma',
        [k],
        `no such option; the options are ${[...OPTION_NAMES].join(', ')}`,
      );
    }
  }
  const checks = Object.fromEntries(Object.keys(PER_VMA_LOCK_CHECKS).map((k) => [k, true])) as Record<
    PerVmaLockCheck,
    boolean
  >;
  for (const [k, v] of Object.entries(options.checks ?? {})) {
    if (!isPerVmaLockCheck(k)) {
      throw new FaultSpecConfigError(
        'pervma',
        [`checks.${k}`],
        `no such check; the checks are ${Object.keys(PER_VMA_LOCK_CHECKS).join(', ')}`,
      );
    }
    if (typeof v !== 'boolean') {
      throw new FaultSpecConfigError('pervma', [`checks.${k}`], `a check is true or false, got ${String(v)}`);
    }
    checks[k] = v;
  }
  for (const k of ['fileVmas', 'vmfAnonPrepareTrylock'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') {
      throw new FaultSpecConfigError('pervma', [k], `must be true or false, got ${String(options[k])}`);
    }
  }
  const paths: unknown = options.paths;
  if (paths !== undefined) {
    if (typeof paths !== 'object' || paths === null) {
      throw new FaultSpecConfigError(
        'pervma',
        ['paths'],
        `must be an object with any of ${PATH_NAMES.join(', ')}, got ${String(paths)}`,
      );
    }
    for (const [k, f] of Object.entries(paths)) {
      if (!PATH_NAMES.includes(k)) {
        throw new FaultSpecConfigError(
          'pervma',
          [`paths.${k}`],
          `no such path; the paths are ${PATH_NAMES.join(', ')}`,
        );
      }
      if (f !== undefined && typeof f !== 'function') {
        throw new FaultSpecConfigError(
          'pervma',
          [`paths.${k}`],
          `must be a generator function, got ${typeof f}`,
        );
      }
    }
  }
  const dup = options.dupMmapStartWrite;
  if (dup !== undefined) {
    if (typeof dup !== 'boolean') {
      throw new FaultSpecConfigError(
        'pervma',
        ['dupMmapStartWrite'],
        `must be true or false, got ${String(dup)}`,
      );
    }
    const explicit = options.checks?.['vmaStartWrite.dupMmap'];
    if (explicit !== undefined && explicit !== dup) {
      throw new FaultSpecConfigError(
        'pervma',
        [`dupMmapStartWrite: ${dup}`, `checks['vmaStartWrite.dupMmap']: ${explicit}`],
        'both name the vma_start_write() of dup_mmap() and disagree; give only one of them',
      );
    }
    checks['vmaStartWrite.dupMmap'] = dup;
  }
  return Object.freeze(checks);
}

/** The mm settings (@spf/vma's `VmaLockingOptions`) the writer-side checks and paths stand for. */
function vmaLockingOf(checks: PerVmaLockChecks, paths: PerVmaLockPaths | undefined): VmaLockingOptions {
  const startWrite = Object.fromEntries(
    (Object.keys(VMA_START_WRITE_SITES) as VmaStartWriteSite[]).map((s) => [s, checks[`vmaStartWrite.${s}`]]),
  ) as Record<VmaStartWriteSite, boolean>;
  return {
    startWrite,
    endWriteAll: checks.vmaEndWriteAllBeforeUnlock ? 'before-unlock' : 'after-unlock',
    ...(paths?.vmaStartWrite === undefined && paths?.vmaEndWriteAll === undefined
      ? {}
      : {
          paths: {
            ...(paths.vmaStartWrite === undefined ? {} : { vmaStartWrite: paths.vmaStartWrite }),
            ...(paths.vmaEndWriteAll === undefined ? {} : { vmaEndWriteAll: paths.vmaEndWriteAll }),
          },
        }),
  };
}

/**
 * Linux 6.4's per-VMA locks as a fault handler: a user fault first tries {@link lockVmaUnderRcu}; with the
 * VMA read-locked it runs `handle_mm_fault()` with FAULT_FLAG_VMA_LOCK and no mmap_lock, and falls back to
 * the classic path under mmap_lock (`do_user_addr_fault()`'s `lock_mmap:`) when the VMA cannot be locked or
 * the fault asks for a retry.
 */
export class PerVmaLockHandler implements FaultHandler {
  readonly name = 'pervma';
  readonly checks: PerVmaLockChecks;
  /** The writer-side switches every mm must be built with (`FaultHandler.mmConfig`; `boot()` applies it). */
  readonly mmConfig: Readonly<Pick<MmConfig, 'vmaLocking'>>;
  private readonly events: PerVmaLockCounters = newPerVmaLockCounters();
  private readonly readerChecks: Readonly<Record<PerVmaReaderCheck, boolean>>;
  /** File VMAs are taken under the VMA lock (Linux 6.7, {@link PerVmaLockOptions.fileVmas}). */
  readonly fileVmas: boolean;
  /** A replacement `lock_vma_under_rcu()` ({@link PerVmaLockOptions.paths}), or null for the package's. */
  private readonly lockVma: NonNullable<PerVmaLockPaths['lockVmaUnderRcu']> | null;
  private readonly context: PerVmaLockContext;
  /** {@link tryVmaLock} bound once, the lockless attempt handed to every `doUserAddrFault()`. */
  private readonly attempt = (fault: UserFault, flags: number): Kernel<LocklessFaultResult> =>
    this.tryVmaLock(fault, flags);

  /** The system's FaultEnv, with `vmfAnonPrepareAlwaysRetry` set when the options ask for Linux 6.7-6.9. */
  readonly env: FaultEnv;

  constructor(env: FaultEnv, options: PerVmaLockOptions = {}) {
    this.env = options.vmfAnonPrepareTrylock === false ? { ...env, vmfAnonPrepareAlwaysRetry: true } : env;
    this.checks = resolvePerVmaLockOptions(options);
    this.mmConfig = { vmaLocking: vmaLockingOf(this.checks, options.paths) };
    this.readerChecks = this.checks;
    this.fileVmas = options.fileVmas ?? false;
    this.lockVma = options.paths?.lockVmaUnderRcu ?? null;
    this.context = Object.freeze({ counters: this.events, fileVmas: this.fileVmas });
  }

  /** VMA_LOCK_SUCCESS, VMA_LOCK_ABORT, VMA_LOCK_RETRY and VMA_LOCK_MISS so far (a live view). */
  get counters(): Readonly<PerVmaLockCounters> {
    return this.events;
  }

  /** Attempts are the user faults that tried `lock_vma_under_rcu()`; aborts are ABORT and RETRY. */
  speculativeStats(): SpeculativeStats {
    const e = this.events;
    return {
      attempts: e.VMA_LOCK_SUCCESS + e.VMA_LOCK_ABORT + e.VMA_LOCK_RETRY,
      handled: e.VMA_LOCK_SUCCESS,
      aborts: { VMA_LOCK_ABORT: e.VMA_LOCK_ABORT, VMA_LOCK_RETRY: e.VMA_LOCK_RETRY },
    };
  }

  handleUserFault(fault: UserFault): Kernel<FaultOutcome> {
    return doUserAddrFault(this.env, fault, this.attempt);
  }

  /**
   * Models the per-VMA-lock block of `do_user_addr_fault()` in arch/x86/mm/fault.c (6.4, with what
   * mainline changed since): only user faults; `lock_vma_under_rcu()`; `access_error()` gives SIGSEGV
   * (ACCERR, or PKUERR for a key) under the VMA lock, counted as a success (`bad_area_access_error()` with
   * the VMA lock, Linux 6.8; 6.4 fell back to mmap_lock instead); `handle_mm_fault()` with
   * FAULT_FLAG_VMA_LOCK; the VMA lock is dropped here unless the result says RETRY or COMPLETED (then the
   * handler already dropped it: `release_fault_lock()`, mainline since 6.7; 6.4 always dropped it here).
   * A retry is counted, marked FAULT_FLAG_TRIED after a major fault, abandoned if a signal is pending, and
   * otherwise redone under mmap_lock.
   */
  private *tryVmaLock(fault: UserFault, flags: number): Kernel<LocklessFaultResult> {
    if ((flags & FAULT_FLAG_USER) === 0) return { kind: 'fallback', flags };
    const { mm, address, errorCode } = fault;
    const vma =
      this.lockVma === null
        ? yield* call(lockVmaUnderRcu(mm, address, this.readerChecks, this.events, this.fileVmas))
        : yield* call(this.lockVma(this.context, mm, address));
    if (vma === null) return { kind: 'fallback', flags };
    if (accessError(errorCode, vma)) {
      yield* vmaEndRead(vma);
      this.events.VMA_LOCK_SUCCESS++;
      return {
        kind: 'outcome',
        outcome: { kind: 'sigsegv', code: (errorCode & PF_PK) !== 0 ? 'PKUERR' : 'ACCERR', address },
      };
    }
    const ret = yield* call(
      handleMmFault(this.env, mm, vma, address, flags | FAULT_FLAG_VMA_LOCK, fault.task),
    );
    if ((ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)) === 0) yield* vmaEndRead(vma);
    if ((ret & VM_FAULT_RETRY) === 0) {
      this.events.VMA_LOCK_SUCCESS++;
      return { kind: 'done', ret };
    }
    this.events.VMA_LOCK_RETRY++;
    let next = flags;
    if ((ret & VM_FAULT_MAJOR) !== 0) next |= FAULT_FLAG_TRIED;
    if (fault.signalPending?.() === true) return { kind: 'outcome', outcome: { kind: 'signal-pending' } };
    return { kind: 'fallback', flags: next };
  }
}

/**
 * Linux 6.4's per-VMA locks (issue 13 item 3): the factory `boot({ faultHandler: perVmaLock(options) })`
 * takes. The handler's `mmConfig.vmaLocking` carries the writer-side switches (`vmaStartWrite.<site>`,
 * `vmaEndWriteAllBeforeUnlock`, `dupMmapStartWrite`) to every mm the system builds. Options are checked
 * when the factory is called: a bad one throws {@link FaultSpecConfigError} before anything boots.
 */
export function perVmaLock(options: PerVmaLockOptions = {}): FaultHandlerFactory {
  resolvePerVmaLockOptions(options);
  return (env) => new PerVmaLockHandler(env, options);
}
