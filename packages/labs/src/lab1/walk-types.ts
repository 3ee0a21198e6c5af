/** The walker interface of @spf/pagetable (src/walker.ts), re-exported for Lab 1's tests. */
export type {
  AccessKind,
  PageSize,
  PagingRegs,
  WalkAccess,
  Walker,
  WalkMemory,
  WalkResult,
} from '@spf/pagetable';
