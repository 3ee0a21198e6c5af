// The mm.h and memory.c mechanics shared by the fault path (@spf/fault-classic, @spf/fault-spec) and the
// syscalls of this package. Each kernel concept is defined here once; both sides import it.
export { pageAnonExclusive } from './anon-exclusive.js';
export { type MemoryEnv, type MemoryEnvOptions, type MemoryEvents, makeMemoryEnv } from './memory-env.js';
export {
  addMmCounter,
  addMmRssVec,
  BadRssCounterStateError,
  checkMm,
  getMmCounter,
  getMmCounterSum,
  mmCounter,
  mmCounterFile,
  type RssCounter,
  type RssCounterFactory,
  type RssCounterInfo,
  type RssCounting,
} from './mm-counter.js';
export {
  p4dAlloc,
  pgtableAllocUnderPtl,
  pmdAlloc,
  pmdAllocWalk,
  pteAlloc,
  pteAllocMap,
  pudAlloc,
} from './page-table-alloc.js';
export { type LockedPte, pmdLockptr, pteLockptr, pteOffsetMapLock, ptlockPtr } from './pte-lock.js';
export { folioAddFileRmap, folioAddNewAnonRmap, folioRemoveRmap } from './rmap.js';
export { isZeroPfn, vmNormalPage } from './vm-normal-page.js';
