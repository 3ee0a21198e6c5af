// Dufour's speculative page fault, v12 (April 2019).
export { DUFOUR_ALL_CHECKS, DUFOUR_CHECKS, type DufourChecks } from './dufour-checks.js';
export {
  DUFOUR_ABORT_REASONS,
  type DufourAbortReason,
  type DufourCounters,
  makeDufourCounters,
} from './dufour-counters.js';
export {
  DufourSpfHandler,
  type DufourSpfOptions,
  type DufourSpfPaths,
  dufourSpf,
  validateDufourOptions,
} from './dufour-spf.js';
export { findVmaRcu } from './find-vma-rcu.js';
export { handleSpeculativeFault, type SpeculativeFaultContext } from './handle-speculative-fault.js';
export { dufourPteMapLock } from './pte-map-lock.js';
export type { SpeculativeFaultState } from './speculative-fault-state.js';
export { readPageTableEntries, type SpeculativeWalkResult, speculativeWalk } from './speculative-walk.js';
export { vmaHasChanged } from './vma-has-changed.js';
