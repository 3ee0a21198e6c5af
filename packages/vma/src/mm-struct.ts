import { AtomicCell, Cell, type Kernel, KernelFault, kassert, MemoryLine, writeEffect } from '@spf/machine';
import type { PageTables } from '@spf/pagetable';
import { unlinkAnonVmas } from './anon-vma.js';
import {
  createMmapLock,
  createRcu,
  createSeqCount,
  createSpinLock,
  type MmapLockKind,
  type RcuLike,
  type SeqCounter,
  type SleepingRwLock,
  type SpinLockLike,
} from './mm-locks.js';
import type { RssCounter, RssCounting } from './memory/mm-counter.js';
import { MmIds } from './mm-ids.js';
import { type MmPageTableOps, NoPageTables, type PageTableFactory } from './page-table-ops.js';
import type { OvercommitPolicy } from './overcommit.js';
import { PAGE_SIZE, VM_ACCOUNT, VM_EXEC, VM_GROWSDOWN, VM_LOCKED, VM_SHARED, VM_WRITE } from './vm-flags.js';
import { type VmArea, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { resolveVmaLocking, type VmaLocking, type VmaLockingOptions, vmaStartWrite } from './vma-lock.js';
import { VmaRbTree } from './vma-rbtree.js';
import { VmaTree, type VmaTreeTx } from './vma-tree.js';

/** RSS counter indexes (enum of include/linux/mm_types_task.h). */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
export const NR_MM_COUNTERS = 4;

/** The RSS counter types' names, by index (`resident_page_types[]` of kernel/fork.c). */
export const RSS_TYPE_NAMES: readonly string[] = [
  'MM_FILEPAGES',
  'MM_ANONPAGES',
  'MM_SWAPENTS',
  'MM_SHMEMPAGES',
];

/** x86-64 TASK_SIZE with 4-level paging (47-bit user space minus the guard page). */
export const TASK_SIZE_4LEVEL = 0x7ffffffff000;
/** mmap_base without address-space randomisation: TASK_SIZE - 128 MiB (mmap_base() in arch/x86/mm/mmap.c). */
export const DEFAULT_MMAP_BASE = TASK_SIZE_4LEVEL - 128 * 1024 * 1024;
/** The brk start of a non-randomised PIE (0x555555554000 plus a typical 20 KiB image). */
export const DEFAULT_START_BRK = 0x555555559000;
/** sysctl vm.max_map_count default (DEFAULT_MAX_MAP_COUNT). */
export const DEFAULT_MAX_MAP_COUNT = 65530;
/** sysctl vm.mmap_min_addr default on x86 (CONFIG_DEFAULT_MMAP_MIN_ADDR). */
export const DEFAULT_MMAP_MIN_ADDR = 65536;
/** stack_guard_gap default: 256 pages. */
export const DEFAULT_STACK_GUARD_GAP = 256 * PAGE_SIZE;

/** How to build an mm. Every field is optional. */
export type MmConfig = {
  /** rw_semaphore (Linux) or a range lock taken over the whole space (the SPF discussion's alternative). */
  readonly mmapLock?: MmapLockKind;
  /** RCU shared by every mm of a simulated system (a new one if absent). */
  readonly rcu?: RcuLike;
  readonly taskSize?: number;
  readonly mmapBase?: number;
  readonly mmapMinAddr?: number;
  readonly maxMapCount?: number;
  readonly stackGuardGap?: number;
  readonly startBrk?: number;
  /** Address inside the initial stack VMA (mm->start_stack), for the `[stack]` name; null if none. */
  readonly startStack?: number | null;
  /**
   * The task may map below mmap_min_addr (CAP_SYS_RAWIO; root on the conformance host). Default false:
   * such mappings fail with EPERM.
   */
  readonly capSysRawio?: boolean;
  /** RLIMIT_AS in bytes (default unlimited). */
  readonly rlimitAs?: number;
  /** Builds the page tables and their operations (default: {@link NoPageTables}, a test double). */
  readonly pageTables?: PageTableFactory;
  /** How `add_mm_counter()` updates the RSS counters, for faults and syscalls alike (default `percpu`). */
  readonly rssCounting?: RssCounting;
  /**
   * Free page tables under mm->page_table_lock (in addition to the mmap lock) instead of Linux's mmap
   * lock alone, so that a speculative fault that takes page_table_lock could safely allocate page tables
   * (Lespinasse's question 3).
   */
  readonly freePgtablesUnderPtl?: boolean;
  /**
   * Free page-table pages after an RCU grace period (`CONFIG_MMU_GATHER_RCU_TABLE_FREE`,
   * `tlb_remove_table()`), after the TLB shootdown as always, instead of right after the shootdown. A
   * lockless walker then only needs rcu_read_lock (Lespinasse's `speculative_page_walk_begin()` in that
   * configuration) rather than interrupts off. Default false.
   */
  readonly pgtableFreeRcu?: boolean;
  /**
   * Dufour's SPF v12 (CONFIG_SPECULATIVE_PAGE_FAULT as posted in April 2019) changes how the mm keeps its
   * VMA tree: every tree update is written inside `mm->mm_seq` (here {@link MmStruct.spfTreeSeq}), the seqlock
   * `find_vma_rcu()` reads, and the tree's reference on a VMA (`vm_ref_count`) is dropped through `call_rcu()`
   * (`vm_rcu_put()`) when the VMA is unlinked, the last `put_vma()` freeing it at once (`__free_vma()`). A
   * speculative fault handler that needs this asks for it (@spf/fault-classic's `FaultHandler.mmConfig`).
   * `rcuPut: false` drops the tree's reference at once instead: unsafe, for showing what the grace period is for.
   * Default null: Linux without SPF (VMAs freed after a grace period, no mm_seq writes).
   */
  readonly spfV12?: SpfV12Tree | null;
  /**
   * Where a VMA drops its file reference (`fput(vma->vm_file)`), Lespinasse's question 2 (see
   * {@link VmFileRelease}). Default `removeVma`, as Linux and SPF v12 do. Inherited by fork.
   */
  readonly vmFileRelease?: VmFileRelease;
  /**
   * The machine's overcommit policy (`__vm_enough_memory()`), shared by every mm of a system and inherited
   * by fork. Default none: accounted mappings are never refused (an mm outside a booted system has no
   * memory size to compare with).
   */
  readonly overcommit?: OvercommitPolicy | null;
  /**
   * How writers use the per-VMA locks of Linux 6.4: which `vma_start_write()` sites are on and when
   * `mmap_write_unlock()` ends the VMA write locks (default: Linux's, every site on). Inherited by fork.
   * A booted system takes it from its fault handler (`FaultHandler.mmConfig.vmaLocking`), so an experiment that
   * removes a site is one option of the per-VMA-lock handler.
   */
  readonly vmaLocking?: VmaLockingOptions;
  /** A label for reports. */
  readonly name?: string;
  /**
   * The id space this mm, its VMAs, anon_vmas and shmem inodes are numbered from: one per simulated system
   * (@spf/kernel's boot makes one and gives it to every mm), inherited by fork. Default: a fresh one, so an
   * mm built alone is `mm#0` and numbers its VMAs from 0 in every run.
   */
  readonly ids?: MmIds;
};

/**
 * Where `vm_file` is released (Lespinasse's question 2 on SPF v12):
 * - `removeVma`: in `remove_vma()` (mm/vma.c), right after munmap unlinks and unmaps the VMA, as Linux and
 *   SPF v12 do. A speculative fault that still holds the VMA (v12's `vm_ref_count`) must not touch the
 *   file, which is why v12 takes only anonymous VMAs.
 * - `freeVma`: when the VMA's refcount reaches zero in `__free_vma()` (Lespinasse's 2019 proposal): the
 *   VMA reference keeps the file alive, so a speculative file fault may use it; the file stays referenced
 *   until the last speculative reference drops.
 * - `rcu`: after an RCU grace period that follows the last reference (his 2021 RFC, after Zijlstra's
 *   delayed `fput()`): an RCU reader that found the VMA may still use its file, at the cost of the file
 *   staying referenced for a grace period after munmap returns.
 * While the file is referenced, umount(2) says EBUSY (Torvalds' 2010 objection to delaying the fput).
 */
export type VmFileRelease = 'removeVma' | 'freeVma' | 'rcu';

/** The values of {@link VmFileRelease}. */
export const VM_FILE_RELEASE_MODES: readonly VmFileRelease[] = Object.freeze(['removeVma', 'freeVma', 'rcu']);

/** An {@link MmConfig.vmFileRelease} that is not one of {@link VM_FILE_RELEASE_MODES}. */
export class VmFileReleaseConfigError extends Error {
  override name = 'VmFileReleaseConfigError';
  constructor(value: unknown) {
    super(
      `MmConfig.vmFileRelease must be one of ${VM_FILE_RELEASE_MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(value) ?? String(value)}; leave it out for Linux's 'removeVma'`,
    );
  }
}

/** How an mm keeps its VMA tree for Dufour's SPF v12 (see {@link MmConfig.spfV12}). */
export type SpfV12Tree = {
  /** Drop the tree's VMA reference after a grace period (`call_rcu(vm_rcu_put)`, as posted); false: at once. */
  readonly rcuPut: boolean;
  /**
   * Keep, besides the B+tree every other path uses, Linux 5.1's VMA rbtree (`mm->mm_rb`, {@link VmaRbTree}),
   * updated in place one store at a time inside `mm->mm_seq` write sections, one per insert or erase, as v12
   * did (`__vma_link_rb()`, `__vma_rb_erase()`), and make the lockless lookup ({@link MmStruct.findVmaRcu})
   * walk it: what SPF v12 ran on. Default false: the substrate's tree is the maple-like copy-on-write B+tree
   * for every design, published with one store, so a lockless walk never sees half an update (and the
   * default costs and fingerprints stay those of that tree).
   */
  readonly rbtree?: boolean;
};

/** Code asked for the page tables (`mm.pgd`) of an mm built without them (with the NoPageTables test double). */
export class NoPageTablesError extends KernelFault {
  override name = 'NoPageTablesError';
  constructor(mm: string) {
    super(
      'no-page-tables',
      `${mm} has no page tables (it was built with the NoPageTables test double); build it with MmConfig.pageTables = PagetableOps.factory(...) to fault or copy pages`,
    );
  }
}

/**
 * struct mm_struct (include/linux/mm_types.h): an address space. Holds the VMA tree (an RCU-safe
 * copy-on-write B-tree), map_count, the mmap lock, page_table_lock, mm_users/mm_count, the RSS counters,
 * the sequence counts of the speculative designs (mm_seq of the 2021 SPF series; mm_lock_seq of per-VMA
 * locks), the layout (task size, mmap_base, brk) and the page tables.
 */
export class MmStruct {
  readonly id: number;
  readonly name: string;
  /** The id space of this mm's system (see {@link MmConfig.ids}). */
  readonly ids: MmIds;
  /** mm->mm_mt. */
  readonly tree: VmaTree<VmArea>;
  /** mm->map_count. */
  mapCount = 0;
  readonly maxMapCount: number;
  readonly mmapLock: SleepingRwLock;
  readonly mmapLockKind: MmapLockKind;
  readonly pageTableLock: SpinLockLike;
  readonly mmUsers: AtomicCell;
  readonly mmCount: AtomicCell;
  /** RSS counters, indexed by MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES. */
  readonly rss: number[] = new Array(NR_MM_COUNTERS).fill(0);
  /** How the RSS counters are updated (see `addMmCounter`). */
  readonly rssCounting: RssCounting;
  /** The shared line of the atomic RSS counters (`rssCounting: 'atomic'`). */
  readonly rssLine: MemoryLine;
  /** Each CPU's line of the per-CPU RSS counters (`rssCounting: 'percpu'`), created on first use. */
  readonly rssCpuLines: (MemoryLine | undefined)[] = [];
  /**
   * `mm->rss_stat[NR_MM_COUNTERS]` made by an `rssCounting` factory (one counter per type), which then holds
   * the value every kernel reader sees; null with the built-in models. `rss` stays the simulator's exact tally.
   */
  readonly rssStat: readonly RssCounter[] | null;
  /** mm->mm_seq (Lespinasse's mmap_seq): odd while a writer holds the mmap lock. */
  readonly mmSeq: SeqCounter;
  /** mm->mm_lock_seq (per-VMA locks): bumped when the mmap write lock is released. */
  readonly mmLockSeq: Cell<number>;
  readonly rcu: RcuLike;
  /** The mm made its own single-CPU RCU (no `rcu` in the config): synchronous callers run its grace periods. */
  readonly ownsSyncRcu: boolean;
  readonly taskSize: number;
  readonly mmapBase: number;
  readonly mmapMinAddr: number;
  readonly stackGuardGap: number;
  readonly rlimitAs: number;
  readonly capSysRawio: boolean;
  startBrk: number;
  brk: number;
  startStack: number | null;
  /** Accounting of mm_struct: total_vm, locked_vm, data_vm, exec_vm, stack_vm (pages). */
  totalVm = 0;
  lockedVm = 0;
  dataVm = 0;
  execVm = 0;
  stackVm = 0;
  /** Committed pages of VM_ACCOUNT mappings (vm_committed_as contribution). */
  committed = 0;
  /** The overcommit policy that accounted mappings are checked against (see {@link MmConfig.overcommit}). */
  readonly overcommit: OvercommitPolicy | null;
  readonly freePgtablesUnderPtl: boolean;
  /** Page-table pages are freed after an RCU grace period (see {@link MmConfig.pgtableFreeRcu}). */
  readonly pgtableFreeRcu: boolean;
  /** Dufour's SPF v12 tree bookkeeping, or null (see {@link MmConfig.spfV12}). */
  readonly spfV12: SpfV12Tree | null;
  /** Where a VMA drops its file reference (see {@link MmConfig.vmFileRelease}). */
  readonly vmFileRelease: VmFileRelease;
  /**
   * SPF v12's `mm->mm_seq`: a seqlock written around each update of the VMA tree (only when
   * {@link spfV12} is set), read by `find_vma_rcu()`. Not Lespinasse's mmap_seq ({@link mmSeq}), which is
   * odd for the whole time the mmap lock is held for writing.
   */
  readonly spfTreeSeq: SeqCounter;
  /**
   * Linux 5.1's VMA rbtree (`mm->mm_rb`) that SPF v12's lockless lookup walks, kept with `spfV12.rbtree`
   * (see {@link SpfV12Tree.rbtree}); null otherwise.
   */
  readonly rbTree: VmaRbTree | null;
  /** The per-VMA lock switches of this mm (see {@link MmConfig.vmaLocking}). */
  readonly vmaLocking: VmaLocking;
  readonly pageTables: MmPageTableOps;
  /** Bumped by every change of the tree, for tests that compare snapshots. */
  generation = 0;

  constructor(config: MmConfig = {}) {
    this.ids = config.ids ?? new MmIds();
    this.id = this.ids.nextMm();
    this.name = config.name ?? `mm#${this.id}`;
    this.tree = new VmaTree<VmArea>(`${this.name}->mm_mt`);
    this.maxMapCount = config.maxMapCount ?? DEFAULT_MAX_MAP_COUNT;
    this.mmapLockKind = config.mmapLock ?? 'rwsem';
    this.mmapLock = createMmapLock(this.mmapLockKind, `${this.name}->mmap_lock`);
    this.pageTableLock = createSpinLock(`${this.name}->page_table_lock`, 'mm->page_table_lock');
    this.mmUsers = new AtomicCell(1, `${this.name}->mm_users`);
    this.mmCount = new AtomicCell(1, `${this.name}->mm_count`);
    this.rssCounting = config.rssCounting ?? 'percpu';
    this.rssLine = new MemoryLine(`${this.name}->rss_stat`);
    const counting = this.rssCounting;
    this.rssStat =
      typeof counting === 'function'
        ? RSS_TYPE_NAMES.map((t, type) => counting({ name: `${this.name}->rss_stat[${t}]`, type }))
        : null;
    this.mmSeq = createSeqCount(`${this.name}->mm_seq`);
    this.mmLockSeq = new Cell(0, `${this.name}->mm_lock_seq`);
    this.rcu = config.rcu ?? createRcu();
    this.ownsSyncRcu = config.rcu === undefined;
    this.taskSize = config.taskSize ?? TASK_SIZE_4LEVEL;
    this.mmapBase = config.mmapBase ?? Math.min(DEFAULT_MMAP_BASE, this.taskSize);
    this.mmapMinAddr = config.mmapMinAddr ?? DEFAULT_MMAP_MIN_ADDR;
    this.stackGuardGap = config.stackGuardGap ?? DEFAULT_STACK_GUARD_GAP;
    this.rlimitAs = config.rlimitAs ?? Number.POSITIVE_INFINITY;
    this.capSysRawio = config.capSysRawio ?? false;
    this.startBrk = config.startBrk ?? DEFAULT_START_BRK;
    this.brk = this.startBrk;
    this.startStack = config.startStack ?? null;
    this.freePgtablesUnderPtl = config.freePgtablesUnderPtl ?? false;
    this.pgtableFreeRcu = config.pgtableFreeRcu ?? false;
    this.spfV12 = config.spfV12 ?? null;
    const release = config.vmFileRelease ?? 'removeVma';
    if (!VM_FILE_RELEASE_MODES.includes(release)) throw new VmFileReleaseConfigError(release);
    this.vmFileRelease = release;
    this.spfTreeSeq = createSeqCount(`${this.name}->mm_seq(v12)`);
    this.rbTree = this.spfV12?.rbtree === true ? new VmaRbTree(`${this.name}->mm_rb`) : null;
    this.overcommit = config.overcommit ?? null;
    this.vmaLocking = resolveVmaLocking(config.vmaLocking);
    this.pageTables = (config.pageTables ?? (() => new NoPageTables()))(this);
    for (const [k, v] of [
      ['taskSize', this.taskSize],
      ['mmapBase', this.mmapBase],
      ['startBrk', this.startBrk],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || v % PAGE_SIZE !== 0) {
        throw new RangeError(`MmConfig.${k} must be a page-aligned non-negative integer, got ${v}`);
      }
    }
  }

  /** The config an mm created by fork should get (same layout and limits, same RCU, same id space). */
  childConfig(pageTables?: PageTableFactory): MmConfig {
    return {
      mmapLock: this.mmapLockKind,
      rcu: this.ownsSyncRcu ? undefined : this.rcu,
      taskSize: this.taskSize,
      mmapBase: this.mmapBase,
      mmapMinAddr: this.mmapMinAddr,
      maxMapCount: this.maxMapCount,
      stackGuardGap: this.stackGuardGap,
      startBrk: this.startBrk,
      startStack: this.startStack,
      rlimitAs: this.rlimitAs,
      capSysRawio: this.capSysRawio,
      pageTables,
      rssCounting: this.rssCounting,
      freePgtablesUnderPtl: this.freePgtablesUnderPtl,
      pgtableFreeRcu: this.pgtableFreeRcu,
      spfV12: this.spfV12,
      vmFileRelease: this.vmFileRelease,
      overcommit: this.overcommit,
      vmaLocking: this.vmaLocking,
      ids: this.ids,
      name: `${this.name}.child`,
    };
  }

  /**
   * `mm->pgd`: the page tables of this address space. Throws {@link NoPageTablesError} for an mm built with
   * the NoPageTables test double.
   */
  get pgd(): PageTables {
    const pgd = this.pageTables.pgd;
    if (pgd === null) throw new NoPageTablesError(this.name);
    return pgd;
  }

  // ---- lookups (callers hold the mmap lock, or accept a racy answer) ----

  /** Models `find_vma()`: the first VMA with vm_end > addr, or null. Synchronous, O(log n). */
  findVma(addr: number): VmArea | null {
    return this.tree.find(addr)?.value ?? null;
  }

  /** Models `vma_lookup()`: the VMA containing `addr`, or null. */
  vmaLookup(addr: number): VmArea | null {
    return this.tree.lookup(addr)?.value ?? null;
  }

  /** The last VMA ending at or below `addr` (vma_prev() from a gap at `addr`). */
  findVmaPrev(addr: number): VmArea | null {
    return this.tree.findPrev(addr)?.value ?? null;
  }

  /** Models `find_vma_intersection()`: the first VMA overlapping [start, end). */
  findVmaIntersection(start: number, end: number): VmArea | null {
    const v = this.findVma(start);
    return v !== null && v.vmStart < end ? v : null;
  }

  /** Every VMA in address order (for_each_vma). */
  *vmas(from = 0): Generator<VmArea> {
    for (const e of this.tree.entries(from)) yield e.value;
  }

  /** VMAs overlapping [start, end) (for_each_vma_range). */
  *vmasIn(start: number, end: number): Generator<VmArea> {
    for (const e of this.tree.entries(start)) {
      if (e.start >= end) return;
      yield e.value;
    }
  }

  /**
   * The lock-free lookup of the speculative designs (find_vma under rcu_read_lock, then a check of the
   * VMA's vm_sequence). Each tree node visited is a machine read. The caller holds rcu_read_lock. With
   * `spfV12.rbtree` it walks Linux 5.1's rbtree ({@link VmaRbTree.findRcu}), which a concurrent update can
   * make return a wrong VMA or null; otherwise the B+tree, which never does.
   */
  *findVmaRcu(addr: number): Kernel<VmArea | null> {
    if (this.rbTree !== null) return yield* this.rbTree.findRcu(addr);
    const e = yield* this.tree.findRcu(addr);
    return e === null ? null : e.value;
  }

  // ---- the mmap lock, with the sequence counts the speculative designs read ----

  /**
   * mmap_read_lock(). The read-side methods return the lock's own kernel code instead of wrapping it in a
   * generator of their own: the same effects, one generator fewer on the fault path.
   */
  mmapReadLock(): Kernel<void> {
    return this.mmapLock.downRead();
  }
  /** mmap_read_unlock(). */
  mmapReadUnlock(): Kernel<void> {
    return this.mmapLock.upRead();
  }
  /** mmap_read_trylock(). */
  mmapReadTrylock(): Kernel<boolean> {
    return this.mmapLock.downReadTrylock();
  }
  /** mmap_write_lock(): takes the lock and opens mm_seq's write section (2021 SPF series). */
  *mmapWriteLock(): Kernel<void> {
    yield* this.mmapLock.downWrite();
    yield* this.mmSeq.writeBegin();
  }
  /**
   * mmap_write_unlock() (include/linux/mmap_lock.h): closes mm_seq's write section, ends every per-VMA
   * write lock taken under it (`vma_end_write_all()`: mm_lock_seq++), and releases the lock. With
   * `vmaLocking.endWriteAll: 'after-unlock'` the bump comes after the release (an experiment's broken order).
   */
  *mmapWriteUnlock(): Kernel<void> {
    yield* this.mmSeq.writeEnd();
    if (this.vmaLocking.endWriteAll === 'after-unlock') {
      yield* this.mmapLock.upWrite();
      yield* this.vmaEndWriteAll();
      return;
    }
    yield* this.vmaEndWriteAll();
    yield* this.mmapLock.upWrite();
  }
  /**
   * Models `vma_end_write_all()` in include/linux/mmap_lock.h: bumps mm_lock_seq, which ends the write lock
   * of every VMA `vma_start_write()` marked since the mmap lock was taken for writing. With
   * `vmaLocking.paths.vmaEndWriteAll` set, that code runs instead.
   */
  *vmaEndWriteAll(): Kernel<void> {
    const replacement = this.vmaLocking.paths?.vmaEndWriteAll;
    if (replacement !== undefined) return yield* replacement(this);
    yield* this.mmLockSeq.update((v) => v + 1);
  }
  /** mmap_write_downgrade(). */
  *mmapWriteDowngrade(): Kernel<void> {
    yield* this.mmSeq.writeEnd();
    yield* this.vmaEndWriteAll();
    yield* this.mmapLock.downgradeWrite();
  }

  // ---- tree updates (callers hold the mmap lock for writing) ----

  /** Starts a tree transaction. */
  beginTree(): VmaTreeTx<VmArea> {
    return this.tree.begin();
  }

  /**
   * Publishes a tree transaction (one store readers can observe) and hands the replaced nodes to RCU. With
   * `spfV12.rbtree` the rbtree is then brought to the same contents as v12 updated it: each VMA the
   * transaction removed erased, then each VMA it added linked, in address order, each inside its own
   * `mm->mm_seq` write section (`__vma_rb_erase()` and `__vma_link_rb()` take `mm_write_seqlock()`); a VMA
   * that stayed keeps its node even if its range changed (`__vma_adjust()` moves no node).
   */
  *commitTree(tx: VmaTreeTx<VmArea>): Kernel<void> {
    const rb = this.rbTree;
    // SPF v12: mm_write_seqlock()/mm_write_sequnlock() around the tree update (vma_rb_insert/__vma_rb_erase).
    // With the rbtree, the B+tree store needs none: the lockless lookup does not read the B+tree then.
    const section = this.spfV12 !== null && rb === null;
    if (section) yield* this.spfTreeSeq.writeBegin();
    const retired = yield* tx.commitRcu();
    if (section) yield* this.spfTreeSeq.writeEnd();
    if (rb !== null) yield* this.syncRbTree(rb);
    this.generation++;
    for (const n of retired) yield* this.rcu.kfreeRcu(n, 'maple node replaced by a tree update');
  }

  /** Erases from the rbtree the VMAs the B+tree no longer has and links the new ones (see {@link commitTree}). */
  private *syncRbTree(rb: VmaRbTree): Kernel<void> {
    const now: VmArea[] = [];
    const present = new Set<VmArea>();
    for (const e of this.tree.entries()) {
      now.push(e.value);
      present.add(e.value);
    }
    const gone = [...rb.vmas()].filter((v) => !present.has(v));
    for (const v of gone) {
      yield* this.spfTreeSeq.writeBegin();
      yield* rb.erase(v);
      yield* this.spfTreeSeq.writeEnd();
    }
    for (const v of now) {
      if (rb.has(v)) continue;
      yield* this.spfTreeSeq.writeBegin();
      yield* rb.insert(v);
      yield* this.spfTreeSeq.writeEnd();
    }
  }

  /** Models `may_expand_vm()` in mm/mmap.c for RLIMIT_AS (RLIMIT_DATA is not modelled). */
  mayExpandVm(npages: number): boolean {
    return (this.totalVm + npages) * PAGE_SIZE <= this.rlimitAs;
  }

  /** Models `vm_stat_account()` in mm/mmap.c. */
  vmStatAccount(flags: number, npages: number): void {
    this.totalVm += npages;
    if (flags & VM_LOCKED) this.lockedVm += npages;
    if ((flags & (VM_EXEC | VM_WRITE)) === VM_EXEC) this.execVm += npages;
    else if (flags & VM_GROWSDOWN) this.stackVm += npages;
    else if ((flags & (VM_WRITE | VM_SHARED | VM_GROWSDOWN)) === VM_WRITE) this.dataVm += npages;
    if (flags & VM_ACCOUNT) this.committed += npages;
  }

  /**
   * Detaches `vma` from the tree inside its write section (so a speculative reader that sampled
   * vm_sequence notices), within the caller's transaction.
   */
  *detachVma(tx: VmaTreeTx<VmArea>, vma: VmArea): Kernel<void> {
    yield* vmaStartWrite(vma, 'munmap');
    yield* vmWriteBegin(vma);
    const found = tx.remove(vma.vmEnd);
    kassert(found, () => `${vma} is not in the tree of ${this.name}`);
    vma.detached = true;
    yield writeEffect(vma.line, 'vma_mark_detached');
    yield* vmWriteEnd(vma);
  }

  /**
   * Models `remove_vma()` in mm/vma.c with the SPF lifetime: calls vm_ops->close, drops the file (with
   * {@link MmStruct.vmFileRelease} `removeVma`; otherwise {@link putVma} drops it later) and the anon_vma
   * links, and drops the tree's reference ({@link vmRcuPut}); the VMA is freed once the last reference is
   * gone and no RCU reader can still find it (`__free_vma`).
   */
  *removeVma(vma: VmArea): Kernel<void> {
    vma.vmOps?.close?.(vma);
    if (this.vmFileRelease === 'removeVma' && vma.vmFile?.put) yield* vma.vmFile.put();
    unlinkAnonVmas(vma);
    yield* vmRcuPut(vma);
  }

  /** Names the mm in reports. */
  toString(): string {
    return this.name;
  }
}

/**
 * Takes a reference on a VMA found under RCU unless it is already being freed (`refcount_inc_not_zero` on
 * vm_ref_count in the SPF series). The caller holds rcu_read_lock.
 */
export function* getVmaNotZero(vma: VmArea): Kernel<boolean> {
  vma.checkLive('vma refcount');
  return yield* vma.refCount.incNotZero();
}

/**
 * Models `get_vma()` of Dufour's SPF v12 (mm/internal.h): `atomic_inc(&vma->vm_ref_count)` on a VMA found
 * under RCU, which the tree's reference keeps allocated until a grace period after it is unlinked
 * ({@link vmRcuPut}). An access to a freed VMA is reported as a use-after-free.
 */
export function getVma(vma: VmArea): Kernel<void> {
  // The refcount's own kernel code, not wrapped in a generator of ours; `yield* getVma(vma)` checks the VMA
  // at the same point as a generator would (yield* starts it at once).
  vma.checkLive('get_vma');
  return vma.refCount.inc();
}

/**
 * Drops a VMA reference (`put_vma()`); the last one frees the VMA (`__free_vma()`): at once in an mm with
 * SPF v12's tree bookkeeping (its RCU readers are covered by {@link vmRcuPut}), otherwise after an RCU grace
 * period (Linux's RCU-freed VMAs, which Lespinasse's series and per-VMA locks rely on).
 */
export function* putVma(vma: VmArea): Kernel<void> {
  if (!(yield* vma.refCount.decAndTest())) return;
  yield* releaseVmFileOnFree(vma);
  if (vma.vmMm.spfV12 !== null) {
    yield writeEffect(vma.line, '__free_vma');
    vma.poison(`__free_vma of ${vma} (last put_vma)`);
    return;
  }
  yield* vma.vmMm.rcu.kfreeRcu(vma, `__free_vma of ${vma}`);
}

/**
 * The file release of `__free_vma()` in the variants of Lespinasse's question 2 ({@link VmFileRelease}):
 * with `freeVma` the last VMA reference does `fput(vma->vm_file)` at once (his 2019 proposal); with `rcu`
 * it queues the fput behind an RCU grace period (`call_rcu()`, his 2021 RFC after Zijlstra's delayed
 * fput). With `removeVma` the file was already dropped by `remove_vma()` and nothing happens here.
 * (Simplified: Linux's delayed fput runs from task work or a workqueue; here the RCU callback runs it.)
 */
function* releaseVmFileOnFree(vma: VmArea): Kernel<void> {
  const file = vma.vmFile;
  const put = file?.put;
  if (file === null || put === undefined) return;
  const mode = vma.vmMm.vmFileRelease;
  if (mode === 'freeVma') yield* put.call(file);
  else if (mode === 'rcu') yield* vma.vmMm.rcu.callRcu(() => put.call(file));
}

/**
 * Drops the tree's reference on a VMA that has been unlinked. With SPF v12's bookkeeping this models
 * `vm_rcu_put()` in mm/mmap.c of the series: `call_rcu()` whose callback is `put_vma()`, so a
 * `find_vma_rcu()` that found the VMA before it was unlinked can still take its reference. (Simplified: v12
 * drops the tree's reference when `__vma_rb_erase()` unlinks the VMA and the creation reference in
 * `remove_vma()`; here one reference stands for both and is dropped at `remove_vma()`, later than the erase,
 * so the VMA lives at least as long.) With `spfV12.rcuPut` false the reference is dropped at once.
 */
export function* vmRcuPut(vma: VmArea): Kernel<void> {
  const spf = vma.vmMm.spfV12;
  if (spf?.rcuPut === true) {
    yield* vma.vmMm.rcu.callRcu(() => putVma(vma));
    return;
  }
  yield* putVma(vma);
}
