// @spf/fault-classic: the classic x86-64 Linux page-fault path under mmap_lock.
export { allocUserPage, allocZeroedUserPage, copyUserPage } from './alloc-page.js';
export { ClassicFaultHandler, classicFaultHandler } from './classic-fault-handler.js';
export { doAnonymousPage, vmfPteChanged } from './do-anonymous-page.js';
export {
  doCowFault,
  doFault,
  doFaultAround,
  doFaultCall,
  doPageMkwrite,
  doReadFault,
  doSharedFault,
  faultAroundPages,
  faultOps,
  finishFault,
  setPteRange,
  shouldFaultAround,
} from './do-fault.js';
export {
  accessError,
  doUserAddrFault,
  doUserAddrFaultRetry,
  lockMmAndFindVma,
  type LocklessFaultAttempt,
  type LocklessFaultResult,
  mmFaultOutcome,
  PageTableCorruptionError,
} from './do-user-addr-fault.js';
export { doWpPage, maybeMkwrite, wpPageCopy, wpPageReuse, wpPageShared } from './do-wp-page.js';
export { TaskFaultCounters, VmStat } from './fault-counters.js';
export {
  DEFAULT_FAULT_AROUND_BYTES,
  type FaultEnv,
  type FaultEnvOptions,
  makeFaultEnv,
} from './fault-env.js';
export * from './fault-flags.js';
export type {
  FaultHandler,
  FaultHandlerFactory,
  FaultOutcome,
  SegvCode,
  SpeculativeStats,
  UserFault,
} from './fault-handler.js';
export {
  handleMmFault,
  handleMmFaultLocked,
  handlePteFault,
  mmAccountFault,
  sanitizeFaultFlags,
} from './handle-mm-fault.js';
export { builtinPteFaultPaths, type PteFaultPaths, withPteFaultPaths } from './pte-fault-paths.js';
export { shmemFault, shmemVmOps } from './shmem-fault.js';
export { type UserFaultPaths, withUserFaultPaths } from './user-fault-paths.js';
export {
  type ClassicVmFault,
  faultFlagAllowRetryFirst,
  faultIsSpeculative,
  pteMapLock,
  releaseFaultLock,
  type SpeculativeFaultHooks,
  type SpeculativeFileAbort,
  type SpeculativeFileHooks,
  type SpeculativeFilemapChecks,
  speculativeFileAbort,
  speculativeFileHooks,
  vmfAnonPrepare,
  vmfLockFailed,
} from './vm-fault.js';
