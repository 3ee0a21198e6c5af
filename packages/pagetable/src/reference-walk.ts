import { isCanonical } from './canonical.js';
import {
  accessErrorBits,
  checkPagingRegs,
  pkeyDenies,
  reservedBitsSet,
  rightsAllow,
} from './paging-rules.js';
import type { PageSize, PagingRegs, WalkAccess, WalkMemory, WalkResult, Walker } from './walker.js';
import { PF_P, PF_PK, PF_RSVD } from './walker.js';

/**
 * The reference x86-64 page walk, written for reading rather than speed (Intel SDM Vol. 3A, 4.5 for the
 * walk, 4.6 for access rights, 4.7 for the error code, 4.8 for A/D). Lab 1's solutions are compared to it,
 * and the MMU's fast walk is property-tested against it.
 *
 * 0. The control bits must be ones the CPU can have set (`regs.features`, SDM 4.1.4): CR4.LA57 without LA57,
 *    say, throws `UnsupportedCpuFeatureError`, since hardware refuses the MOV to CR4 with #GP.
 * 1. A non-canonical address is a #GP, before any table is read.
 * 2. From CR3, read the entry selected by each 9-bit slice of the address (bits 56:48 for the PML5 with LA57,
 *    then 47:39, 38:30, 29:21, 20:12). An entry with P = 0 ends the walk with #PF (error-code P = 0). A
 *    present entry with a reserved bit set ends it with #PF (P = 1, RSVD = 1); which bits are reserved
 *    depends on MAXPHYADDR, EFER.NXE and, for PS in a PDPTE, on 1 GiB page support. A PDPTE or PDE with
 *    PS = 1 is the leaf of a 1 GiB or 2 MiB page; a PTE is always a leaf.
 * 3. The rights are combined over all entries (U/S and R/W must be 1 in every entry, XD in any entry), then
 *    checked against the access and CR0.WP, CR4.SMEP/SMAP/PKE/PKS, EFER.NXE, EFLAGS.AC, PKRU and IA32_PKRS.
 *    A violation is #PF with P = 1 and the PK bit when protection keys denied the access.
 * 4. A/D policy (the SDM allows several): the walk sets A in every entry used, and D in the leaf for a
 *    write, only when the translation succeeds, each with an atomic OR (`mem.setBits`).
 */
export const referenceWalk: Walker = (
  mem: WalkMemory,
  regs: PagingRegs,
  va: bigint,
  access: WalkAccess,
): WalkResult => {
  checkPagingRegs(regs);
  if (!isCanonical(va, regs.la57)) return { ok: false, fault: 'GP' };
  const accessBits = accessErrorBits(regs, access);
  const pageFault = (bits: number): WalkResult => ({
    ok: false,
    fault: 'PF',
    errorCode: accessBits | bits,
    cr2: va,
  });

  const levels = regs.la57 ? 5 : 4;
  let table = regs.cr3 & ~0xfffn & ((1n << 52n) - 1n);
  let user = true;
  let writable = true;
  let xd = false;
  const used: bigint[] = [];
  let leaf = 0n;
  let leafLevel = 1;

  for (let level = levels; level >= 1; level--) {
    const shift = 12n + 9n * BigInt(level - 1);
    const index = (va >> shift) & 511n;
    const entryAddr = table + index * 8n;
    const entry = mem.readEntry(entryAddr);
    if ((entry & 1n) === 0n) return pageFault(0);
    if (reservedBitsSet(entry, level, regs) !== 0n) return pageFault(PF_P | PF_RSVD);
    used.push(entryAddr);
    user &&= (entry & 4n) !== 0n;
    writable &&= (entry & 2n) !== 0n;
    xd ||= entry >> 63n === 1n;
    const isLeaf = level === 1 || ((level === 2 || level === 3) && (entry & 0x80n) !== 0n);
    if (isLeaf) {
      leaf = entry;
      leafLevel = level;
      break;
    }
    table = entry & ((1n << 52n) - 1n) & ~0xfffn;
  }

  const rights = { user, writable, xd, pkey: Number((leaf >> 59n) & 0xfn) };
  const allowed = rightsAllow(regs, access, rights);
  const pk = pkeyDenies(regs, access, rights);
  if (!allowed || pk) return pageFault(PF_P | (pk ? PF_PK : 0));

  for (const addr of used) mem.setBits(addr, 0x20n);
  if (access.kind === 'write') mem.setBits(used[used.length - 1], 0x40n);

  const pageSize = (leafLevel === 1 ? 4096 : leafLevel === 2 ? 2097152 : 1073741824) as PageSize;
  const frame = leaf & ((1n << 52n) - 1n) & ~BigInt(pageSize - 1);
  return { ok: true, pa: frame | (va & BigInt(pageSize - 1)), pageSize };
};
