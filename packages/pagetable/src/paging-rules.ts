import { checkControlBits } from './cpu-features.js';
import type { PagingRegs, WalkAccess } from './walker.js';
import { PF_INSTR, PF_PK, PF_USER, PF_WRITE } from './walker.js';

/**
 * The access-rights rules of Intel SDM Vol. 3A, 4.6 (and the error-code rules of 4.7), shared by the
 * reference walk and the kernel-form walk. The fast walk in mmu.ts implements the same rules on numbers
 * and is checked against these by property tests.
 */

/** Rights accumulated over a walk: the combination of every entry used (SDM 4.6.1). */
export type Rights = {
  /** U/S = 1 in every entry: a user-mode address. */
  readonly user: boolean;
  /** R/W = 1 in every entry. */
  readonly writable: boolean;
  /** XD = 1 in some entry (only meaningful when NXE = 1). */
  readonly xd: boolean;
  /** Protection key of the leaf (bits 62:59). */
  readonly pkey: number;
};

/** Memo of the level-independent reserved bits, by MAXPHYADDR and NXE (the walk asks for every entry). */
const baseMasks = new Map<number, bigint>();

/** Bits 51:MAXPHYADDR, and XD when NXE = 0. */
function baseReservedMask(maxPhyAddr: number, nxe: boolean): bigint {
  const key = maxPhyAddr * 2 + (nxe ? 1 : 0);
  let mask = baseMasks.get(key);
  if (mask === undefined) {
    mask = ((1n << 52n) - 1n) & ~((1n << BigInt(maxPhyAddr)) - 1n);
    if (!nxe) mask |= 1n << 63n;
    baseMasks.set(key, mask);
  }
  return mask;
}

/** Memo of {@link baseReservedMask} split into 32-bit halves: [low, high], by MAXPHYADDR and NXE. */
const baseMaskHalves = new Map<number, readonly [number, number]>();
let lastHalvesKey = -1;
let lastHalves: readonly [number, number] | undefined;

/**
 * Whether a present entry at `level`, given as its 32-bit halves, has a reserved bit set: the same rule as
 * {@link reservedBitsSet} (`reservedBitsSet(entry, level, regs) !== 0n`) without BigInt arithmetic.
 */
export function reservedBitsSetHalves(lo: number, hi: number, level: number, regs: PagingRegs): boolean {
  const key = regs.maxPhyAddr * 2 + (regs.nxe ? 1 : 0);
  // The last key's halves first: a machine's walks all ask for the same one, several times per walk.
  let halves = key === lastHalvesKey ? lastHalves : baseMaskHalves.get(key);
  if (halves === undefined) {
    const mask = baseReservedMask(regs.maxPhyAddr, regs.nxe);
    halves = [Number(mask & 0xffff_ffffn), Number(mask >> 32n)];
    baseMaskHalves.set(key, halves);
  }
  lastHalvesKey = key;
  lastHalves = halves;
  let maskLo = halves[0];
  const ps = (lo & 0x80) !== 0;
  if (level >= 4 || (level === 3 && regs.features?.pdpe1gb === false)) maskLo |= 0x80;
  else if (level === 3 && ps) maskLo |= 0x3fff_e000;
  else if (level === 2 && ps) maskLo |= 0x1f_e000;
  return (lo & maskLo) !== 0 || (hi & halves[1]) !== 0;
}

/**
 * Reserved bits of a present entry at `level` (SDM 4.5, tables 4-15 to 4-20): bits 51:MAXPHYADDR, XD when
 * NXE = 0, PS in a PML5E/PML4E, PS in a PDPTE when the CPU has no 1 GiB pages (`features.pdpe1gb` false;
 * table 4-15 and 4.1.4), and the bits between 12 and the page size in a large-page leaf (bits 29:13 of a
 * 1 GiB PDPTE, 20:13 of a 2 MiB PDE; bit 12 is PAT). Returns the mask of reserved bits that are set.
 */
export function reservedBitsSet(entry: bigint, level: number, regs: PagingRegs): bigint {
  let mask = baseReservedMask(regs.maxPhyAddr, regs.nxe);
  const ps = (entry & 0x80n) !== 0n;
  if (level >= 4 || (level === 3 && regs.features?.pdpe1gb === false)) mask |= 0x80n;
  else if (level === 3 && ps) mask |= 0x3fff_e000n;
  else if (level === 2 && ps) mask |= 0x1f_e000n;
  return entry & mask;
}

/** Whether the access is allowed by the combined rights (SDM 4.6.1), protection keys aside. */
export function rightsAllow(regs: PagingRegs, access: WalkAccess, r: Rights): boolean {
  const write = access.kind === 'write';
  if (access.kind === 'fetch') {
    if (access.user) {
      if (!r.user) return false;
    } else if (r.user && regs.smep) return false;
    return !(regs.nxe && r.xd);
  }
  if (access.user) {
    if (!r.user) return false;
    return !write || r.writable;
  }
  // Supervisor-mode data access. SMAP blocks user-mode addresses unless the access is explicit and AC = 1.
  if (r.user && regs.smap && (access.implicit === true || !regs.ac)) return false;
  // With CR0.WP = 0 a supervisor write ignores R/W; with WP = 1 it needs R/W = 1 everywhere.
  return !write || !regs.wp || r.writable;
}

/**
 * Whether protection keys deny the access (SDM 4.6.2), for data accesses only: a user-mode address is
 * checked against PKRU when CR4.PKE = 1, a supervisor-mode address against IA32_PKRS when CR4.PKS = 1. AD
 * denies every data access; WD denies writes, by user mode always and by supervisor mode only when
 * CR0.WP = 1.
 */
export function pkeyDenies(regs: PagingRegs, access: WalkAccess, r: Rights): boolean {
  if (access.kind === 'fetch') return false;
  let keys: number;
  if (r.user) {
    if (!regs.pke) return false;
    keys = regs.pkru;
  } else {
    if (regs.pks !== true) return false;
    keys = regs.pkrs ?? 0;
  }
  const ad = (keys >>> (2 * r.pkey)) & 1;
  const wd = (keys >>> (2 * r.pkey + 1)) & 1;
  if (ad) return true;
  return wd === 1 && access.kind === 'write' && (access.user || regs.wp);
}

/**
 * The error-code bits that describe the access itself (SDM 4.7): W/R for a write, U/S for a user-mode
 * access, I/D for an instruction fetch when NXE = 1 or SMEP = 1.
 */
export function accessErrorBits(regs: PagingRegs, access: WalkAccess): number {
  let code = 0;
  if (access.kind === 'write') code |= PF_WRITE;
  if (access.user) code |= PF_USER;
  if (access.kind === 'fetch' && (regs.nxe || regs.smep)) code |= PF_INSTR;
  return code;
}

/**
 * Throws `UnsupportedCpuFeatureError` when `regs` sets a control bit that `regs.features` does not allow
 * (CR4.LA57/SMEP/SMAP/PKE/PKS or EFER.NXE without LA57/SMEP/SMAP/PKU/PKS/NX): a state hardware never reaches,
 * because the MOV to CR4 or WRMSR that would create it raises #GP. Without `regs.features` (a modern CPU)
 * every setting is allowed.
 */
export function checkPagingRegs(regs: PagingRegs): void {
  const f = regs.features;
  if (f === undefined) return;
  if (
    (regs.la57 && !f.la57) ||
    (regs.smep && !f.smep) ||
    (regs.smap && !f.smap) ||
    (regs.pke && !f.pku) ||
    (regs.pks === true && !f.pks) ||
    (regs.nxe && !f.nx)
  ) {
    checkControlBits(f, regs);
  }
}

export { PF_PK };
