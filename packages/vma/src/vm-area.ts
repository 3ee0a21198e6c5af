import { Refcount } from '@spf/locks';
import { type Page, putPage } from '@spf/pagetable';
import { Cell, type Kernel, kassert, MemoryLine, UseAfterFreeError, writeEffect } from '@spf/machine';
import type { AnonVma, AnonVmaChain } from './anon-vma.js';
import type { MemoryEnv } from './memory/memory-env.js';
import { createSeqCount, createVmaLock, type SeqCounter, type SleepingRwLock } from './mm-locks.js';
import type { MmIds } from './mm-ids.js';
import type { MmStruct } from './mm-struct.js';
import { vmGetPageProt } from './page-prot.js';
import {
  PAGE_SHIFT,
  PAGE_SIZE,
  VM_ACCESS_FLAGS,
  VM_EXEC,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vm-flags.js';

/**
 * A mapped file as a VMA sees it (struct file, reduced to what the mm and /proc/PID/maps need).
 * @spf/file-backed implements it; shared anonymous mappings use {@link ShmemZeroFile}.
 */
export interface VmFile {
  /** The path /proc/PID/maps prints. */
  readonly path: string;
  /** Device of the inode's superblock (major, minor). */
  readonly devMajor: number;
  readonly devMinor: number;
  readonly ino: number;
  /** get_file(): a VMA now references the file. */
  get?(): void;
  /** fput(): a VMA dropped its reference; the last one may release what the file owns (kernel code). */
  put?(): Kernel<void>;
}

/** The fault context handed to vm_ops (struct vm_fault, reduced). Fault handlers extend it. */
export interface VmFault {
  readonly vma: VmArea;
  /** Faulting address, page aligned. */
  readonly address: number;
  /** Page offset in the mapping (linear_page_index). */
  readonly pgoff: number;
  /** FAULT_FLAG_* bits. */
  readonly flags: number;
  /** The system the fault runs in (physical memory, costs): what a `->fault` allocates pages from. */
  readonly env: MemoryEnv;
  /** The page the handler returns (`vmf->page`). */
  page?: Page;
}

/**
 * vm_operations_struct: how a file-backed (or special) mapping handles faults. Every hook is optional,
 * as in Linux. Handlers returning a fault result return VM_FAULT_* bits.
 */
export interface VmOperations {
  /** Name in /proc/PID/maps instead of the file (like [vdso]). */
  name?(vma: VmArea): string | null;
  open?(vma: VmArea): void;
  close?(vma: VmArea): void;
  /** May the VMA be split at `addr`? Returns 0 or a negative errno-like value (-EINVAL). */
  maySplit?(vma: VmArea, addr: number): number;
  fault?(vmf: VmFault): Kernel<number>;
  mapPages?(vmf: VmFault, startPgoff: number, endPgoff: number): Kernel<number>;
  pageMkwrite?(vmf: VmFault): Kernel<number>;
  /**
   * The pages of the large folio `page` (the page a `->fault` returned) belongs to, in index order, when
   * `finish_fault()` may map the folio whole (Linux 6.18: it ends within i_size; every other page of it is
   * uptodate and not locked); null for an order-0 page or when only `page` may be mapped. Not a Linux hook:
   * Linux reads the folio from the page. Absent: always one page.
   */
  faultFolioPages?(vmf: VmFault, page: Page): readonly Page[] | null;
  /**
   * `vm_ops->speculative` of Lespinasse's 2021 RFC ("fs: list file types that support speculative
   * faults"): `->fault` and `->map_pages` may be called without mmap_lock, inside a speculative fault
   * (FAULT_FLAG_SPECULATIVE), where they must not sleep. Absent: never speculatively.
   */
  readonly speculative?: boolean;
}

/**
 * The file behind a shared anonymous mapping: shmem_zero_setup() in mm/shmem.c gives each MAP_SHARED |
 * MAP_ANONYMOUS mapping its own shmem file, which /proc/PID/maps shows as `/dev/zero (deleted)` on device
 * 00:01. Its pages (the page cache of that unlinked file, filled by the shmem fault handler) are owned
 * here: each holds one reference, dropped when the last VMA referencing the file goes ({@link put}). Its inode
 * number comes from the system's id space (`get_next_ino()`, see {@link MmIds.nextIno}).
 */
export class ShmemZeroFile implements VmFile {
  readonly path = '/dev/zero (deleted)';
  readonly devMajor = 0;
  readonly devMinor = 1;
  readonly ino: number;
  /** References: one per VMA (`f_count`). */
  refs = 0;
  /** Page cache: pgoff -> page, each holding one reference of the file's. */
  readonly pages = new Map<number, Page>();
  constructor(
    ids: MmIds,
    readonly size: number,
  ) {
    this.ino = ids.nextIno();
  }
  get(): void {
    this.refs++;
  }
  /**
   * `fput()`. The last reference evicts the inode (`__fput()` -> `iput()` -> `shmem_evict_inode()`, which
   * truncates the page cache): every page the file holds loses the file's reference, so a page no PTE maps
   * any more is freed. Runs when the VMA that held it is removed (munmap, mremap, exit, a failed fork),
   * whichever thread does it, so nothing polls for unused files.
   */
  *put(): Kernel<void> {
    this.refs--;
    if (this.refs > 0) return;
    const pages = [...this.pages.values()];
    this.pages.clear();
    for (const p of pages) yield* putPage(p);
  }
}

/**
 * vm_area_struct (include/linux/mm_types.h): one mapping of an address space, with the fields of the
 * speculative-page-fault designs: `vmSequence` (Dufour's vm_sequence seqcount), a reference count whose
 * last put frees the VMA after an RCU grace period (`__free_vma`), and the per-VMA lock (vm_lock and
 * vm_lock_seq, Linux 6.4). Its fields share one memory line, `line`, as fields of one struct do. Its `id`
 * (`vma#N` in traces and reports) comes from its mm's id space ({@link MmStruct.ids}), one per system.
 *
 * Writers change a VMA only between {@link vmWriteBegin} and {@link vmWriteEnd} while holding the mmap lock
 * for writing, so a speculative reader that sampled `vmSequence` can detect the change.
 */
export class VmArea {
  readonly id: number;
  readonly line: MemoryLine;
  vmStart: number;
  vmEnd: number;
  vmPgoff: number;
  vmFlags: number;
  /** vm_page_prot: the PTE protection bits new PTEs of this VMA get. */
  vmPageProt: bigint;
  vmFile: VmFile | null;
  vmOps: VmOperations | null;
  anonVma: AnonVma | null = null;
  /** anon_vma_chain: one link per anon_vma this VMA's pages may belong to (own first, ancestors after). */
  anonVmaChain: AnonVmaChain[] = [];
  /** Private data of the vm_ops owner. */
  vmPrivateData: unknown = null;
  /** Dufour's vm_sequence: odd while a writer changes the VMA. */
  readonly vmSequence: SeqCounter;
  /** vm_ref_count: the tree holds one reference; speculative faults take more. */
  readonly refCount: Refcount;
  /** Per-VMA lock (struct vma_lock's rw_semaphore) and the mm_lock_seq value it was write-locked at. */
  private vmLockObj: SleepingRwLock | null = null;
  readonly vmLockSeq: Cell<number>;
  /** Not in any mm's tree any more (vma_mark_detached). */
  detached = false;
  /** Set when the VMA has been freed; any access through a stale pointer is a use-after-free. */
  poisoned: string | null = null;

  constructor(
    readonly vmMm: MmStruct,
    start: number,
    end: number,
    flags: number,
    pgoff: number,
    file: VmFile | null = null,
    ops: VmOperations | null = null,
  ) {
    this.id = vmMm.ids.nextVma();
    this.line = new MemoryLine(`vma#${this.id}`);
    this.vmStart = start;
    this.vmEnd = end;
    this.vmFlags = flags;
    this.vmPgoff = pgoff;
    this.vmFile = file;
    this.vmOps = ops;
    this.vmPageProt = vmGetPageProt(flags);
    this.vmSequence = createSeqCount(`vma#${this.id}.vm_sequence`);
    this.refCount = new Refcount(`vma#${this.id}.vm_ref_count`);
    this.vmLockSeq = new Cell(-1, this.line);
  }

  /**
   * The per-VMA lock (struct vma_lock's rw_semaphore), created on first use: a VMA nobody ever locked
   * costs no lock object (vma_start_write() skips the lock while none exists; see vma-lock.ts).
   */
  get vmLock(): SleepingRwLock {
    if (this.vmLockObj === null) this.vmLockObj = createVmaLock(`vma#${this.id}.vm_lock`);
    return this.vmLockObj;
  }

  /** Whether the per-VMA lock has been created (someone took it). */
  get hasVmLock(): boolean {
    return this.vmLockObj !== null;
  }

  /** vma_pages(). */
  get pages(): number {
    return (this.vmEnd - this.vmStart) / PAGE_SIZE;
  }

  /** vma_is_anonymous(): no vm_ops. */
  isAnonymous(): boolean {
    return this.vmOps === null && this.vmFile === null;
  }

  /** linear_page_index(): the page offset of `addr` in the mapping. */
  linearPageIndex(addr: number): number {
    return this.vmPgoff + (addr - this.vmStart) / 2 ** PAGE_SHIFT;
  }

  /** is_cow_mapping(): private and may be written. */
  isCowMapping(): boolean {
    return (this.vmFlags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  }

  /** Whether the VMA allows the access kinds in `flags` (VM_READ/VM_WRITE/VM_EXEC). */
  allows(flags: number): boolean {
    return (this.vmFlags & flags & VM_ACCESS_FLAGS) === (flags & VM_ACCESS_FLAGS);
  }

  /** The VMA's permission string as /proc/PID/maps prints it (`rw-p`). */
  perms(): string {
    const f = this.vmFlags;
    return (
      (f & VM_READ ? 'r' : '-') +
      (f & VM_WRITE ? 'w' : '-') +
      (f & VM_EXEC ? 'x' : '-') +
      (f & VM_MAYSHARE ? 's' : 'p')
    );
  }

  /** Marks the VMA freed (the RCU callback of __free_vma). */
  poison(reason: string): void {
    this.poisoned = reason;
  }

  /** Throws a use-after-free report if the VMA was freed (KASAN's check on a VMA access). */
  checkLive(what: string): void {
    if (this.poisoned !== null) {
      throw new UseAfterFreeError(`${what} accessed freed vma#${this.id} (${this.poisoned})`);
    }
  }

  /**
   * Recomputes vm_page_prot from vm_flags (models `vma_set_page_prot()` in mm/mmap.c) in one step, for a
   * VMA no speculative reader can see yet; a published VMA's writers use {@link vmaSetPageProt}.
   */
  setPageProt(): void {
    this.vmPageProt = this.pageProtFromFlags();
  }

  /** The vm_page_prot `vma_set_page_prot()` computes from the current vm_flags. */
  pageProtFromFlags(): bigint {
    let flags = this.vmFlags;
    // vma_wants_writenotify(): shared writable mappings whose file wants to hear of the first write
    // (page_mkwrite) get read-only PTEs, so that write faults reach the file system.
    if ((flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED) && this.vmOps?.pageMkwrite)
      flags &= ~VM_SHARED;
    return vmGetPageProt(flags);
  }

  toString(): string {
    return `vma#${this.id}[${this.vmStart.toString(16)}-${this.vmEnd.toString(16)} ${this.perms()}]`;
  }
}

/** vm_write_begin() (Dufour's SPF series): opens a write section on the VMA's vm_sequence. */
export function* vmWriteBegin(vma: VmArea): Kernel<void> {
  vma.checkLive('vm_write_begin');
  yield* vma.vmSequence.writeBegin();
}

/** vm_write_end(): closes the write section. */
export function* vmWriteEnd(vma: VmArea): Kernel<void> {
  yield* vma.vmSequence.writeEnd();
}

/** Asserts that `vma` is inside a write section (every writer must be). */
export function assertVmWriting(vma: VmArea): void {
  kassert((vma.vmSequence.peek() & 1) === 1, () => `${vma} changed outside vm_write_begin/vm_write_end`);
}

/** The fields of a VMA that a speculative fault reads without mmap_lock, each stored on its own. */
export type VmaOnceField = 'vmStart' | 'vmEnd' | 'vmPgoff' | 'vmFlags' | 'vmPageProt';

const VMA_FIELD_NAMES: Record<VmaOnceField, string> = {
  vmStart: 'vm_start',
  vmEnd: 'vm_end',
  vmPgoff: 'vm_pgoff',
  vmFlags: 'vm_flags',
  vmPageProt: 'vm_page_prot',
};

/**
 * `WRITE_ONCE(vma->field, value)`: one plain store to one field of a VMA, its own machine effect. On real
 * hardware a writer under mmap_write_lock updates a VMA one field at a time (`vma_set_range()` stores
 * vm_start, vm_end and vm_pgoff in turn, `vm_flags_reset()` then `vma_set_page_prot()`), so a lockless
 * reader running between two stores sees a half-updated VMA; SPF v12 marked these stores WRITE_ONCE()
 * (patch "mm: protect VMA modifications using VMA sequence count") and relies on `vm_sequence` to reject
 * such a snapshot. A store of an unchanged value is skipped: nobody could tell it happened.
 */
export function* vmaWriteOnce<K extends VmaOnceField>(vma: VmArea, field: K, value: VmArea[K]): Kernel<void> {
  if (vma[field] === value) return;
  yield writeEffect(vma.line, `WRITE_ONCE(${VMA_FIELD_NAMES[field]})`);
  vma[field] = value;
}

/** Models `vma_set_page_prot()` in mm/mmap.c on a published VMA: vm_page_prot from vm_flags, one store. */
export function* vmaSetPageProt(vma: VmArea): Kernel<void> {
  yield* vmaWriteOnce(vma, 'vmPageProt', vma.pageProtFromFlags());
}
