// @spf/pagetable: x86-64 paging hardware and physical memory.
export { canonicalize, checkCanonical, isCanonical } from './canonical.js';
export {
  CPU_FEATURE_NAMES,
  type CpuFeatures,
  checkControlBit,
  checkInvpcid,
  type FeatureControlBit,
  MODERN_CPU_FEATURES,
  resolveCpuFeatures,
} from './cpu-features.js';
export { CpuMask } from './cpu-mask.js';
export { type DumpOptions, dumpPageTables } from './dump.js';
export * from './entry-bits.js';
export { entryFlagNames, formatEntry, formatErrorCode } from './entry-format.js';
export { explainWalk, type WalkExplanation } from './explain-walk.js';
export {
  DoubleFreeError,
  InvalidArgumentError,
  InvalidFreeError,
  MappingConflictError,
  MisalignedAddressError,
  NonCanonicalAddressError,
  OutOfMemoryError,
  PagetableError,
  PhysicalAddressError,
  UnsupportedCpuFeatureError,
  WildAccessError,
  ZeroPageWriteError,
} from './errors.js';
export { type KernelWalkOutcome, kernelWalk } from './kernel-walk.js';
export {
  ACCESS_FETCH,
  ACCESS_IMPLICIT,
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  accessBits,
  accessFromBits,
  CpuPaging,
  type FaultInfo,
  Mmu,
  type MmuOptions,
  split,
} from './mmu.js';
export { PG, Page, type PageFlagName } from './page.js';
export {
  getPage,
  getPageUnlessZero,
  lockPage,
  PageRefError,
  pageMapcountDec,
  pageMapcountInc,
  putPage,
  trylockPage,
  unlockPage,
} from './page-ref.js';
export {
  entryTablePa,
  type MapOptions,
  PageTables,
  type PageTablesOptions,
  tableIndex,
  type VirtAddr,
  type WalkStep,
} from './page-tables.js';
export {
  accessErrorBits,
  checkPagingRegs,
  pkeyDenies,
  type Rights,
  reservedBitsSet,
  rightsAllow,
} from './paging-rules.js';
export {
  FrameState,
  MAX_ORDER,
  PageStateError,
  PhysicalMemory,
  type PhysicalMemoryOptions,
} from './physical-memory.js';
export * from './pte.js';
export { referenceWalk } from './reference-walk.js';
export {
  flushTlbMmRange,
  flushTlbPage,
  flushTlbRangeLocal,
  pteNeedsFlush,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
} from './shootdown.js';
export * from './swap-entry.js';
export { TLB_D, TLB_G, TLB_U, TLB_VALID, TLB_W, TLB_XD, Tlb, TlbArray, type TlbOptions } from './tlb.js';
export * from './walker.js';
