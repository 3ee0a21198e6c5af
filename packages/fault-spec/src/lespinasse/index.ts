// Lespinasse's speculative page fault (the 2021-22 mmap_seq series).
export {
  LESPINASSE_ABORT_REASONS,
  LESPINASSE_ATTEMPT_KINDS,
  type LespinasseAbortReason,
  type LespinasseCounters,
  newLespinasseCounters,
} from './lespinasse-counters.js';
export {
  LESPINASSE_CHECKS,
  type LespinasseCheck,
  type LespinasseOptions,
  type ResolvedLespinasseOptions,
  resolveLespinasseOptions,
  type SpeculativePageWalkGuard,
} from './lespinasse-options.js';
export { LespinasseSpfHandler, lespinasseSpf } from './lespinasse-spf.js';
export type { LespinasseSpfState } from './lespinasse-state.js';
export { mmapSeqReadCheck, mmapSeqReadStart } from './mmap-seq.js';
export { lespinassePteMapLock } from './pte-map-lock.js';
export { speculativePageWalkBegin, speculativePageWalkEnd } from './speculative-page-walk.js';
export { vmaCopy } from './vma-copy.js';
