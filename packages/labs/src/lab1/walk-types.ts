/**
 * The walker interface of @spf/pagetable (packages/pagetable/src/walker.ts), mirrored here until that
 * package's public index exports it; the shapes are identical, so a `Walker` from either is accepted.
 */
export type AccessKind = 'read' | 'write' | 'fetch';
export type WalkAccess = { readonly kind: AccessKind; readonly user: boolean; readonly implicit?: boolean };
export type PagingRegs = {
  readonly cr3: bigint;
  readonly wp: boolean;
  readonly smep: boolean;
  readonly smap: boolean;
  readonly pke: boolean;
  readonly la57: boolean;
  readonly nxe: boolean;
  readonly ac: boolean;
  readonly pkru: number;
  readonly maxPhyAddr: number;
};
export interface WalkMemory {
  readEntry(paddr: bigint): bigint;
  setBits(paddr: bigint, bits: bigint): void;
}
export type PageSize = 4096 | 2097152 | 1073741824;
export type WalkResult =
  | { readonly ok: true; readonly pa: bigint; readonly pageSize: PageSize }
  | { readonly ok: false; readonly fault: 'PF'; readonly errorCode: number; readonly cr2: bigint }
  | { readonly ok: false; readonly fault: 'GP' };
export type Walker = (mem: WalkMemory, regs: PagingRegs, va: bigint, access: WalkAccess) => WalkResult;
