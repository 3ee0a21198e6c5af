import type { FaultEnv } from '@spf/fault-classic';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';

/**
 * The safety checks of Lespinasse's speculative page fault, each a switch (all on by default), named after
 * what it is in the series, with what it protects. The README's table and the course read this list.
 */
export const LESPINASSE_CHECKS = {
  mmapSeqCheck:
    'mmap_seq_read_start() in do_user_addr_fault(): abort at once when mmap_seq is odd, i.e. a writer holds mmap_lock (SPF_ABORT_ODD)',
  rcuFreeVma:
    'the VMA lookup and the on-stack copy run inside rcu_read_lock(), so the RCU-deferred free of a removed VMA and of replaced tree nodes waits for them',
  speculativePageWalk:
    'speculative_page_walk_begin()/end() around every page-table read: interrupts off (tables freed after the shootdown IPI) or rcu_read_lock() (tables freed by RCU)',
  mmapSeqCheckBeforePtl:
    '__pte_map_lock(): mmap_seq check inside the walk guard before the PMD is read again, so the page tables are still live (SPF_ABORT_PTE_MAP_LOCK_SEQ1)',
  pmdSame: '__pte_map_lock(): the PMD still holds the value the walk saw (SPF_ABORT_PTE_MAP_LOCK_PMD)',
  ptlTrylock:
    '__pte_map_lock(): spin_trylock() the PTE lock and abort when it is held, instead of spinning with interrupts off (SPF_ABORT_PTE_MAP_LOCK_PTL)',
  mmapSeqRecheck:
    '__pte_map_lock(): mmap_seq re-check with the PTE lock held, the commit point of the speculation (SPF_ABORT_PTE_MAP_LOCK_SEQ2)',
  vmFileLifetime:
    'fileVmas (2021 RFC, "mm: rcu safe vma->vm_file freeing"): speculate on a file VMA only if the mm defers fput(vm_file) past an RCU grace period (vmFileRelease rcu); otherwise abort (SPF_ABORT_FILE_RELEASE)',
  fileRcu:
    'fileVmas: ->fault() and ->map_pages() run inside rcu_read_lock() ("speculative handling in __do_fault()/do_fault_around()"), so the RCU-deferred fput of vm_file waits for them',
  mmapSeqCheckBeforeFile:
    'fileVmas: mmap_seq_read_check() at the start of that RCU section: the VMA copy (and so vm_file) was still current when the section began (SPF_ABORT_FILE_SEQ)',
  pageMappingRecheck:
    'fileVmas: the speculative filemap_fault()/filemap_map_pages() re-check page->mapping once the page is locked (not truncated meanwhile)',
} as const;

/** The name of one of Lespinasse's safety checks. */
export type LespinasseCheck = keyof typeof LESPINASSE_CHECKS;

/** How `speculative_page_walk_begin()` keeps page tables from being freed under the walk. */
export type SpeculativePageWalkGuard = 'irqoff' | 'rcu';

/** Options of {@link lespinasseSpf}. Every field is optional. */
export interface LespinasseOptions {
  /** Safety checks to switch off for experiments (each defaults to true). */
  readonly checks?: Partial<Record<LespinasseCheck, boolean>>;
  /**
   * How the speculative walk is protected (`speculative_page_walk_begin()`): `irqoff` (`local_irq_disable()`,
   * as fast GUP: a shootdown IPI, and the table free behind it, waits for the walk) or `rcu`
   * (`rcu_read_lock()`, the `CONFIG_MMU_GATHER_RCU_TABLE_FREE` case). Default: `rcu` when the system frees
   * page tables by RCU (`boot({ pgtableFreeRcu: true })`), `irqoff` otherwise. `rcu` with tables freed right
   * after the shootdown is refused.
   */
  readonly pageWalk?: SpeculativePageWalkGuard;
  /**
   * Question 3: allocate a missing p4d/pud/pmd/PTE table speculatively, under `mm->page_table_lock` after
   * re-checking mmap_seq under that lock, instead of aborting (SPF_ABORT_PUD / SPF_ABORT_PMD). Needs page
   * tables freed under the same lock (`boot({ freePgtablesUnderPtl: true })`); refused otherwise. Default false.
   */
  readonly specPgtableAlloc?: boolean;
  /**
   * Skip the speculative attempt when the mm has a single user (`mm_users == 1`: no other thread can change
   * the address space meanwhile, so mmap_lock is uncontended). Default false: the 2022 series has no such
   * shortcut (Dufour's v12 did).
   */
  readonly singleThreadShortcut?: boolean;
  /**
   * File VMAs, as the 2021 RFC ("[RFC PATCH 00/37] Speculative page faults", April 2021, patches 23-32) posted
   * them: a file VMA whose `vm_ops` allow speculation (@spf/file-backed's files; the RFC's ext4, xfs, ...) is
   * handled speculatively, except shared writes (`vma_can_speculate()`: no `->page_mkwrite`). `->fault` and
   * `->map_pages` run inside `rcu_read_lock()` after an mmap_seq check, and `vm_file`'s fput is deferred past
   * a grace period (the handler asks every mm for `vmFileRelease: 'rcu'`; a boot's own `vmFileRelease` wins,
   * and with any other mode file VMAs abort: SPF_ABORT_FILE_RELEASE). Only cached, uptodate, unlocked pages
   * are mapped (fault-around first; `filemap_fault()` without I/O); everything else falls back. Default true,
   * as the RFC posted it (the 2022 v2 series dropped file VMAs: `fileVmas: false` is that series).
   */
  readonly fileVmas?: boolean;
}

/** The options after validation, with every default filled in. */
export interface ResolvedLespinasseOptions {
  readonly checks: Readonly<Record<LespinasseCheck, boolean>>;
  readonly pageWalk: SpeculativePageWalkGuard;
  readonly specPgtableAlloc: boolean;
  readonly singleThreadShortcut: boolean;
  readonly fileVmas: boolean;
}

const HANDLER = 'lespinasse';
const OPTION_KEYS = ['checks', 'pageWalk', 'specPgtableAlloc', 'singleThreadShortcut', 'fileVmas'] as const;

function bool(value: unknown, name: string, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') {
    throw new FaultSpecConfigError(HANDLER, [name], `must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Checks {@link LespinasseOptions} against each other and against how the booted system frees page tables
 * (`env.pgtableFreeRcu`, `env.freePgtablesUnderPtl`), and fills in the defaults. Throws
 * {@link FaultSpecConfigError} naming the options for anything unknown, mistyped, unsafe or contradictory;
 * nothing is built then.
 */
export function resolveLespinasseOptions(
  env: FaultEnv,
  options: LespinasseOptions = {},
): ResolvedLespinasseOptions {
  if (typeof options !== 'object' || options === null) {
    throw new FaultSpecConfigError(HANDLER, ['options'], 'must be an object (or omitted)');
  }
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new FaultSpecConfigError(
        HANDLER,
        [key],
        `unknown option; the options are ${OPTION_KEYS.join(', ')}`,
      );
    }
  }
  const given = options.checks ?? {};
  if (typeof given !== 'object' || given === null) {
    throw new FaultSpecConfigError(HANDLER, ['checks'], 'must be an object of check names to booleans');
  }
  const names = Object.keys(LESPINASSE_CHECKS) as LespinasseCheck[];
  for (const key of Object.keys(given)) {
    if (!(names as string[]).includes(key)) {
      throw new FaultSpecConfigError(
        HANDLER,
        [`checks.${key}`],
        `unknown check; the checks are ${names.join(', ')}`,
      );
    }
  }
  const checks = Object.fromEntries(
    names.map((n) => [n, bool((given as Record<string, unknown>)[n], `checks.${n}`, true)]),
  ) as Record<LespinasseCheck, boolean>;

  const rcuTables = env.pgtableFreeRcu === true;
  const pageWalk = options.pageWalk ?? (rcuTables ? 'rcu' : 'irqoff');
  if (pageWalk !== 'irqoff' && pageWalk !== 'rcu') {
    throw new FaultSpecConfigError(
      HANDLER,
      ['pageWalk'],
      `must be 'irqoff' or 'rcu', got ${JSON.stringify(pageWalk)}`,
    );
  }
  if (pageWalk === 'rcu' && !rcuTables) {
    throw new FaultSpecConfigError(
      HANDLER,
      ["pageWalk: 'rcu'", 'page tables freed right after the TLB shootdown (boot pgtableFreeRcu: false)'],
      'rcu_read_lock() only holds back frees that wait for a grace period, and these page tables are freed as soon as ' +
        "the shootdown IPI is acknowledged; use pageWalk: 'irqoff' (the IPI waits for the walk), or boot with " +
        'pgtableFreeRcu: true (CONFIG_MMU_GATHER_RCU_TABLE_FREE)',
    );
  }
  const specPgtableAlloc = bool(options.specPgtableAlloc, 'specPgtableAlloc', false);
  if (specPgtableAlloc && env.freePgtablesUnderPtl !== true) {
    throw new FaultSpecConfigError(
      HANDLER,
      [
        'specPgtableAlloc: true',
        'page tables freed without mm->page_table_lock (boot freePgtablesUnderPtl: false)',
      ],
      'a table installed under page_table_lock after the mmap_seq re-check can still be linked into a directory ' +
        'that munmap is freeing outside that lock (a leak or a use-after-free); boot with freePgtablesUnderPtl: true, ' +
        'or leave specPgtableAlloc off (faults that find a level missing then fall back to mmap_lock)',
    );
  }
  const singleThreadShortcut = bool(options.singleThreadShortcut, 'singleThreadShortcut', false);
  const fileVmas = bool(options.fileVmas, 'fileVmas', true);
  return { checks, pageWalk, specPgtableAlloc, singleThreadShortcut, fileVmas };
}
