/**
 * The injection point for a page walker (used by Lab 1 of the course): a readable, bigint-based interface
 * to the x86-64 walk. The package's own fast MMU implements the same semantics; `Mmu` accepts a `walker`
 * option that replaces its walk with any function of this type.
 *
 * Addresses and entries are `bigint` so that every bit of a 64-bit entry (XD is bit 63) is exact.
 */
import type { CpuFeatures } from './cpu-features.js';

/** The three kinds of memory access the MMU translates. */
export type AccessKind = 'read' | 'write' | 'fetch';

/** One access to translate. */
export type WalkAccess = {
  readonly kind: AccessKind;
  /** CPL 3 (user-mode) access. */
  readonly user: boolean;
  /**
   * An implicit supervisor-mode access (the CPU itself reads a descriptor table or similar), which SMAP
   * treats as a supervisor access regardless of EFLAGS.AC. Only meaningful when `user` is false.
   */
  readonly implicit?: boolean;
};

/** The architectural state that controls paging (Intel SDM Vol. 3A, 4.1 and 4.6). */
export type PagingRegs = {
  /** CR3: the physical address of the top-level table (PML4 or PML5), low 12 bits ignored (no PCID bits here). */
  readonly cr3: bigint;
  /** CR0.WP: supervisor writes honour R/W. */
  readonly wp: boolean;
  /** CR4.SMEP. */
  readonly smep: boolean;
  /** CR4.SMAP. */
  readonly smap: boolean;
  /** CR4.PKE: protection keys for user pages. */
  readonly pke: boolean;
  /** CR4.LA57: 5-level paging. */
  readonly la57: boolean;
  /** EFER.NXE: the XD bit is honoured (when 0, a set bit 63 is reserved). */
  readonly nxe: boolean;
  /** EFLAGS.AC (lets explicit supervisor accesses to user pages through SMAP). */
  readonly ac: boolean;
  /** PKRU: two bits (AD, WD) per key, key i at bits 2i and 2i+1. */
  readonly pkru: number;
  /** MAXPHYADDR, the number of physical address bits (default 46). */
  readonly maxPhyAddr: number;
  /** CR4.PKS: protection keys for supervisor-mode addresses, checked against {@link pkrs} (absent: 0). */
  readonly pks?: boolean;
  /** IA32_PKRS: the supervisor keys' AD and WD bits, laid out as in PKRU (absent: 0). */
  readonly pkrs?: number;
  /**
   * What the CPU enumerates (SDM 4.1.4). Absent: a modern CPU with every feature. A walk throws
   * `UnsupportedCpuFeatureError` when a control bit above is set without its feature (hardware would have
   * refused that setting with #GP), and treats PS in a PDPTE as reserved without `pdpe1gb`.
   */
  readonly features?: CpuFeatures;
};

/** Physical memory as the walker sees it: 8-byte entries at physical addresses. */
export interface WalkMemory {
  /** Reads the 64-bit entry at `paddr` (8-byte aligned). */
  readEntry(paddr: bigint): bigint;
  /** Atomically ORs `bits` into the entry at `paddr` (how the MMU sets A and D). */
  setBits(paddr: bigint, bits: bigint): void;
}

/** Page sizes a translation can end in. */
export type PageSize = 4096 | 2097152 | 1073741824;

/** The result of a translation: a physical address, or a fault with its exact reporting. */
export type WalkResult =
  | { readonly ok: true; readonly pa: bigint; readonly pageSize: PageSize }
  /** #PF: `errorCode` has P (bit 0), W/R (1), U/S (2), RSVD (3), I/D (4), PK (5); `cr2` is the faulting address. */
  | { readonly ok: false; readonly fault: 'PF'; readonly errorCode: number; readonly cr2: bigint }
  /** #GP: the address is not canonical. */
  | { readonly ok: false; readonly fault: 'GP' };

/** A page walker: translates `va` for `access` under `regs`, reading and updating entries through `mem`. */
export type Walker = (mem: WalkMemory, regs: PagingRegs, va: bigint, access: WalkAccess) => WalkResult;

/** #PF error-code bits (Intel SDM Vol. 3A, 4.7). */
export const PF_P = 1 << 0;
export const PF_WRITE = 1 << 1;
export const PF_USER = 1 << 2;
export const PF_RSVD = 1 << 3;
export const PF_INSTR = 1 << 4;
export const PF_PK = 1 << 5;
