// @spf/vma: mm_struct, the VMA tree and the mapping syscalls with Linux's semantics.
export {
  AnonVma,
  AnonVmaChain,
  anonVmaClone,
  anonVmaCompatible,
  anonVmaFork,
  anonVmaPrepare,
  findMergeableAnonVma,
  unlinkAnonVmas,
  vmaIsForkChild,
} from './anon-vma.js';
export { doBrk, sysBrk } from './brk.js';
export { dupMmap, ForkOutOfMemoryError } from './dup-mmap.js';
export { Errno, type ErrnoValue, errnoName, fail, ok, type SysResult } from './errno.js';
export {
  OvercommitConfigError,
  type OvercommitMode,
  type OvercommitOptions,
  OvercommitPolicy,
  securityVmEnoughMemoryMm,
} from './overcommit.js';
export {
  getUnmappedArea,
  type UnmappedAreaKind,
  unmappedArea,
  unmappedAreaTopdown,
  vmStartGap,
} from './get-unmapped-area.js';
export {
  doMadvise,
  MADV_COLD,
  MADV_COLLAPSE,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
  MADV_HUGEPAGE,
  MADV_HWPOISON,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_REMOVE,
  MADV_SOFT_OFFLINE,
  MADV_UNMERGEABLE,
  MADV_WIPEONFORK,
  type MadviseBehavior,
  type MadviseSupport,
  madviseBehavior,
  madviseNeedMmapWrite,
  sysMadvise,
} from './madvise.js';
export {
  checkMmInvariants,
  MmInvariantError,
  mmInvariantProblems,
  type PageStateReader,
  pageStates,
} from './mm-invariants.js';
export {
  createMmapLock,
  createRcu,
  createSeqCount,
  createSpinLock,
  createVmaLock,
  downWriteNested,
  type MmapLockKind,
  type Poisonable,
  type RcuLike,
  type SeqCounter,
  type SleepingRwLock,
  type SpinLockLike,
} from './mm-locks.js';
export {
  DEFAULT_MAX_MAP_COUNT,
  DEFAULT_MMAP_BASE,
  DEFAULT_MMAP_MIN_ADDR,
  DEFAULT_STACK_GUARD_GAP,
  DEFAULT_START_BRK,
  getVma,
  getVmaNotZero,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  type MmConfig,
  MmStruct,
  NoPageTablesError,
  NR_MM_COUNTERS,
  putVma,
  RSS_TYPE_NAMES,
  type SpfV12Tree,
  VM_FILE_RELEASE_MODES,
  type VmFileRelease,
  VmFileReleaseConfigError,
  vmRcuPut,
  TASK_SIZE_4LEVEL,
} from './mm-struct.js';
export { MmIds } from './mm-ids.js';
export { doMmap, type MmapArgs, type MmapFile, mmapRegion, type PopulateHook, sysMmap } from './mmap.js';
export { doMprotect, mprotectFixup, sysMprotect } from './mprotect.js';
export { doMremap, type MremapArgs, sysMremap } from './mremap.js';
export { doMunmap, doVmiAlignMunmap, sysMunmap, unmapRegion } from './munmap.js';
export { protectionMap, vmGetPageProt } from './page-prot.js';
export { PagetableOps, type PagetableOpsOptions } from './pagetable-backed-ops.js';
export * from './memory/index.js';
export {
  type MmPageTableOps,
  MmuGather,
  NoPageTables,
  type PageTableFactory,
  type PresentPte,
} from './page-table-ops.js';
export {
  type MapsEntry,
  mapsEntries,
  procMaps,
  type SmapsEntry,
  showMapVma,
  smaps,
  vmaName,
} from './proc-maps.js';
export { DEFAULT_STACK_SIZE, setupStack } from './setup-stack.js';
export { type TaskMemRss, taskMemRss } from './task-mem.js';
export * from './vm-flags.js';
export { vmFlagsReset } from './vm-flags-reset.js';
export {
  assertVmWriting,
  ShmemZeroFile,
  VmArea,
  type VmFault,
  type VmFile,
  type VmaOnceField,
  type VmOperations,
  vmaSetPageProt,
  vmaWriteOnce,
  vmWriteBegin,
  vmWriteEnd,
} from './vm-area.js';
export {
  splitVma,
  splitVmaChecked,
  type VmaMergeState,
  vmAreaDup,
  vmaMergeExistingRange,
  vmaMergeNewRange,
  vmaModify,
  vmaModifyFlags,
} from './vma-merge.js';
export { TREE_FANOUT, type TreeEntry, TreeNode, VmaTree, VmaTreeTx } from './vma-tree.js';
export { RB_BLACK, RB_RED, type RbColor, VmaRbNode, VmaRbTree } from './vma-rbtree.js';
export {
  brkSync,
  forkSync,
  madviseSync,
  mmapSync,
  mprotectSync,
  mremapSync,
  munmapSync,
} from './sync-api.js';
export { speculativeVmaLookup, speculativeVmaValidate, type VmaSnapshot } from './spf-lookup.js';
export {
  LINUX_VMA_LOCKING,
  resolveVmaLocking,
  VMA_START_WRITE_SITES,
  type VmaEndWriteAllOrder,
  vmaEndRead,
  vmaIsWriteLocked,
  type VmaLocking,
  VmaLockingConfigError,
  type VmaLockingOptions,
  vmaStartRead,
  type VmaStartReadSteps,
  vmaStartWrite,
  type VmaStartWriteSite,
  type VmaWriteLockPaths,
} from './vma-lock.js';
export { DEFAULT_RLIMIT_STACK, expandDownwards } from './expand-stack.js';
export { exitMmap, mmget, mmput } from './exit-mmap.js';
