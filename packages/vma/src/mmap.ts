import type { Kernel } from '@spf/machine';
import { Errno, type ErrnoValue, fail, ok, type SysResult } from './errno.js';
import { getUnmappedArea } from './get-unmapped-area.js';
import { securityVmEnoughMemoryMm } from './overcommit.js';
import type { MmStruct } from './mm-struct.js';
import { doVmiAlignMunmap, validArg } from './munmap.js';
import {
  calcVmFlagBits,
  calcVmProtBits,
  LEGACY_MAP_MASK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  PAGE_SIZE,
  pageAlign,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './vm-flags.js';
import { ShmemZeroFile, VmArea, type VmFile, type VmOperations } from './vm-area.js';
import { commitVmaChanges, vmaMergeNewRange } from './vma-merge.js';

/**
 * Populates [start, start+len) after mmap(MAP_POPULATE) or for VM_LOCKED (mm_populate), by faulting each
 * page in. The fault handler lives in @spf/fault-classic, so the caller supplies it. It runs after the
 * mmap lock was dropped, as in Linux, and takes the lock itself.
 */
export type PopulateHook = (mm: MmStruct, start: number, len: number, write: boolean) => Kernel<void>;

/** A file to map: the file, its vm_ops, and which accesses the open file allows. */
export type MmapFile = {
  readonly file: VmFile;
  readonly ops: VmOperations;
  /** Opened for reading (FMODE_READ); false gives EACCES for any mapping. */
  readonly readable?: boolean;
  /** Opened for writing (FMODE_WRITE); false clears VM_MAYWRITE|VM_SHARED of shared mappings. */
  readonly writable?: boolean;
};

/** Arguments of mmap(2). `pgoff` is the file offset in pages (mmap_pgoff). */
export type MmapArgs = {
  readonly addr: number;
  readonly len: number;
  readonly prot: number;
  readonly flags: number;
  /** For a file mapping (without MAP_ANONYMOUS); absent without MAP_ANONYMOUS is EBADF (no open file). */
  readonly file?: MmapFile | null;
  /** Byte offset into the file (must be page aligned). */
  readonly offset?: number;
  readonly populate?: PopulateHook;
};

/** Models `accountable_mapping()` in mm/vma.c: private writable mappings are charged to commit. */
function accountableMapping(flags: number): boolean {
  return (flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) === VM_WRITE;
}

/** Pages of [start, end) already mapped (count_vma_pages_range), for MAP_FIXED's RLIMIT_AS check. */
function countVmaPagesRange(mm: MmStruct, start: number, end: number): number {
  let n = 0;
  for (const v of mm.vmasIn(start, end))
    n += (Math.min(end, v.vmEnd) - Math.max(start, v.vmStart)) / PAGE_SIZE;
  return n;
}

/** Pages of VM_ACCOUNT mappings in [start, end) (`vms->nr_accounted`: the charge MAP_FIXED takes over). */
function accountedPagesIn(mm: MmStruct, start: number, end: number): number {
  let n = 0;
  for (const v of mm.vmasIn(start, end)) {
    if (v.vmFlags & VM_ACCOUNT) n += (Math.min(end, v.vmEnd) - Math.max(start, v.vmStart)) / PAGE_SIZE;
  }
  return n;
}

/**
 * Models `mmap_region()`/`__mmap_region()` in mm/vma.c: unmaps what MAP_FIXED replaces, tries to merge the
 * new range with its neighbours, otherwise inserts a new VMA. `addr`/`len` are page aligned and checked.
 */
export function* mmapRegion(
  mm: MmStruct,
  addr: number,
  len: number,
  vmFlags: number,
  pgoff: number,
  file: MmapFile | null,
): Kernel<SysResult<VmArea>> {
  const end = addr + len;
  const pglen = len / PAGE_SIZE;
  if (!mm.mayExpandVm(pglen)) {
    if (!mm.mayExpandVm(pglen - countVmaPagesRange(mm, addr, end))) return fail(Errno.ENOMEM);
  }
  // Accounting (__mmap_setup(): accountable_mapping() and security_vm_enough_memory_mm(); shmem_zero_setup()
  // -> shmem_acct_size() for shared anonymous memory), checked before anything changes; Linux aborts the
  // gathered munmap and restores the replaced VMAs when it fails here.
  if (accountableMapping(vmFlags)) {
    const charged = pglen - accountedPagesIn(mm, addr, end);
    if (charged > 0 && !securityVmEnoughMemoryMm(mm, charged)) return fail(Errno.ENOMEM);
  } else if (file === null && vmFlags & VM_SHARED && !(vmFlags & VM_NORESERVE)) {
    if (!securityVmEnoughMemoryMm(mm, pglen)) return fail(Errno.ENOMEM);
  }
  const existing = mm.findVmaIntersection(addr, end);
  if (existing !== null) {
    // vms_gather_munmap_vmas(): the only failure is the max_map_count check, made before any change.
    if (addr > existing.vmStart && end < existing.vmEnd && mm.mapCount >= mm.maxMapCount) {
      return fail(Errno.ENOMEM);
    }
    const r: ErrnoValue | 0 = yield* doVmiAlignMunmap(mm, existing, addr, end);
    if (r !== 0) return fail(r);
  }
  if (accountableMapping(vmFlags)) vmFlags |= VM_ACCOUNT;
  const prev = mm.findVmaPrev(addr);
  const next = mm.findVma(addr);
  let vma: VmArea | null = null;
  const vmFile = file ? file.file : null;
  const vmOps = file ? file.ops : null;
  vma = yield* vmaMergeNewRange(mm, {
    prev,
    middle: null,
    next,
    start: addr,
    end,
    pgoff,
    flags: vmFlags,
    file: vmFile,
    ops: vmOps,
    anonVma: null,
  });
  if (vma === null) {
    if (file) {
      vma = new VmArea(mm, addr, end, vmFlags, pgoff, vmFile, vmOps);
      vmFile?.get?.();
      vmOps?.open?.(vma);
    } else if (vmFlags & VM_SHARED) {
      // shmem_zero_setup(): a shared anonymous mapping is backed by its own shmem file.
      const shm = new ShmemZeroFile(mm.ids, len);
      vma = new VmArea(mm, addr, end, vmFlags, 0, shm, null);
      shm.get();
    } else {
      vma = new VmArea(mm, addr, end, vmFlags, pgoff);
    }
    yield* commitVmaChanges(mm, [], [], [vma]);
  }
  mm.vmStatAccount(vmFlags, pglen);
  vma.vmFlags |= VM_SOFTDIRTY;
  vma.setPageProt();
  return ok(vma);
}

/**
 * Models `do_mmap()` in mm/mmap.c (with ksys_mmap_pgoff's and the x86 syscall's offset check): the
 * argument checks in Linux's order, the address choice and the mapping. Returns the mapped address or an
 * errno; nothing changes on failure. The caller holds the mmap lock for writing.
 */
export function* doMmap(mm: MmStruct, args: MmapArgs): Kernel<SysResult<number>> {
  let { addr, flags } = args;
  const { len, prot } = args;
  const offset = args.offset ?? 0;
  const file = args.file ?? null;
  if (
    !validArg(addr) ||
    !validArg(len) ||
    !validArg(offset) ||
    !Number.isInteger(prot) ||
    !Number.isInteger(flags)
  ) {
    return fail(Errno.EINVAL);
  }
  // sys_mmap (arch/x86/kernel/sys_x86_64.c): the offset must be page aligned.
  if (offset % PAGE_SIZE !== 0) return fail(Errno.EINVAL);
  // ksys_mmap_pgoff(): without MAP_ANONYMOUS the fd must name an open file (fget() fails: EBADF).
  if (!(flags & MAP_ANONYMOUS) && file === null) return fail(Errno.EBADF);
  const pgoff = offset / PAGE_SIZE;
  if (!len) return fail(Errno.EINVAL);
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
  if (!(flags & MAP_FIXED)) {
    // round_hint_to_min()
    addr -= addr % PAGE_SIZE;
    if (addr !== 0 && addr < mm.mmapMinAddr) addr = mm.mmapMinAddr;
  }
  const alen = pageAlign(len);
  if (alen > Number.MAX_SAFE_INTEGER || alen >= 2 ** 64) return fail(Errno.ENOMEM);
  if (mm.mapCount > mm.maxMapCount) return fail(Errno.ENOMEM);
  const area = getUnmappedArea(mm, addr, alen, flags, { file: file !== null });
  if ('errno' in area) return fail(area.errno);
  addr = area.addr;
  if (flags & MAP_FIXED_NOREPLACE && mm.findVmaIntersection(addr, addr + alen) !== null) {
    return fail(Errno.EEXIST);
  }
  let vmFlags = calcVmProtBits(prot) | calcVmFlagBits(flags) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  let mapPgoff: number;
  if (file) {
    const type = flags & MAP_TYPE;
    if (type === MAP_SHARED_VALIDATE && (flags & ~(LEGACY_MAP_MASK | MAP_FIXED_NOREPLACE)) !== 0) {
      return fail(Errno.EOPNOTSUPP);
    }
    if (file.readable === false) return fail(Errno.EACCES);
    if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
      if (prot & PROT_WRITE && file.writable === false) return fail(Errno.EACCES);
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      if (file.writable === false) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
    } else if (type !== MAP_PRIVATE) {
      return fail(Errno.EINVAL);
    }
    if (vmFlags & VM_GROWSDOWN) return fail(Errno.EINVAL);
    mapPgoff = pgoff;
  } else {
    // MAP_HUGETLB: hugetlb_file_setup() finds no reserved huge pages here (none are modelled).
    if (flags & MAP_HUGETLB) return fail(Errno.ENOMEM);
    const type = flags & MAP_TYPE;
    if (type === MAP_SHARED) {
      if (vmFlags & VM_GROWSDOWN) return fail(Errno.EINVAL);
      mapPgoff = 0;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
    } else if (type === MAP_PRIVATE) {
      mapPgoff = addr / PAGE_SIZE;
    } else {
      return fail(Errno.EINVAL);
    }
  }
  // do_mmap() honours MAP_NORESERVE only when overcommit is allowed (not vm.overcommit_memory = 2).
  if (flags & MAP_NORESERVE && mm.overcommit?.mode !== 'never') vmFlags |= VM_NORESERVE;
  const r = yield* mmapRegion(mm, addr, alen, vmFlags, mapPgoff, file);
  if (!r.ok) return r;
  return ok(addr);
}

/**
 * Models the mmap(2) system call (`vm_mmap_pgoff`): takes the mmap lock for writing, maps, drops the
 * lock, then populates the range for MAP_POPULATE (without MAP_NONBLOCK) or VM_LOCKED through the hook.
 */
export function* sysMmap(mm: MmStruct, args: MmapArgs): Kernel<SysResult<number>> {
  yield* mm.mmapWriteLock();
  let r: SysResult<number>;
  try {
    r = yield* doMmap(mm, args);
  } finally {
    yield* mm.mmapWriteUnlock();
  }
  const wantPopulate =
    (args.flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE || (r.ok && isLocked(mm, r.value));
  if (r.ok && wantPopulate && args.populate) {
    yield* args.populate(
      mm,
      r.value,
      pageAlign(args.len),
      (args.prot & PROT_WRITE) !== 0 && isPrivate(args.flags),
    );
  }
  return r;
}

function isLocked(mm: MmStruct, addr: number): boolean {
  const v = mm.vmaLookup(addr);
  return v !== null && (v.vmFlags & VM_LOCKED) !== 0;
}

function isPrivate(flags: number): boolean {
  return (flags & MAP_TYPE) === MAP_PRIVATE;
}
