import { type Kernel, readEffect, rmwEffect } from '@spf/machine';
import { isCanonical } from './canonical.js';
import { accessErrorBits, pkeyDenies, type Rights, reservedBitsSet, rightsAllow } from './paging-rules.js';
import type { PhysicalMemory } from './physical-memory.js';
import type { PageSize, PagingRegs, WalkAccess, WalkResult } from './walker.js';
import { PF_P, PF_PK, PF_RSVD } from './walker.js';

/** What {@link kernelWalk} found: the result, plus the leaf entry and rights for a TLB fill. */
export type KernelWalkOutcome = {
  readonly result: WalkResult;
  readonly leaf: bigint;
  readonly rights: Rights;
};

const NO_RIGHTS: Rights = { user: false, writable: false, xd: false, pkey: 0 };
/** Bits 51:0 (hoisted: BigInt constants built per call cost an allocation each). */
const ADDR_MASK = (1n << 52n) - 1n;
/** Bits 51:12: the frame address of an entry. */
const FRAME_MASK = ADDR_MASK & ~0xfffn;
/** Shift of the index bits of the table at each level (index = level). */
const LEVEL_SHIFT: readonly bigint[] = [0n, 12n, 21n, 30n, 39n, 48n];

/**
 * The hardware page walk as kernel code for a Machine: the same rules as `referenceWalk` (Intel SDM Vol. 3A,
 * 4.5 to 4.8), but each entry read is a read effect on the entry's memory line and each A/D update is a
 * locked RMW. The update only ORs the bits in if the entry still holds the value the walk read; if another
 * CPU changed it in between, the walk starts again from CR3 (the SDM requires A/D updates to be atomic with
 * respect to other accesses to the entry; restarting is how we keep the update from resurrecting a cleared
 * entry). A table frame freed under the walker raises `UseAfterFreeError` at the read.
 */
export function* kernelWalk(
  mem: PhysicalMemory,
  regs: PagingRegs,
  va: bigint,
  access: WalkAccess,
): Kernel<KernelWalkOutcome> {
  if (!isCanonical(va, regs.la57)) return { result: { ok: false, fault: 'GP' }, leaf: 0n, rights: NO_RIGHTS };
  const accessBits = accessErrorBits(regs, access);
  const fault = (bits: number): KernelWalkOutcome => ({
    result: { ok: false, fault: 'PF', errorCode: accessBits | bits, cr2: va },
    leaf: 0n,
    rights: NO_RIGHTS,
  });
  restart: for (;;) {
    let table = Number(regs.cr3 & FRAME_MASK);
    let user = true;
    let writable = true;
    let xd = false;
    const usedPa: number[] = [];
    const usedValue: bigint[] = [];
    let leaf = 0n;
    let leafLevel = 1;
    for (let level = regs.la57 ? 5 : 4; level >= 1; level--) {
      const index = Number((va >> LEVEL_SHIFT[level]) & 511n);
      const pa = table + index * 8;
      yield readEffect(mem.lineOf(pa), 'page walk');
      const entry = mem.walkRead(pa);
      if ((entry & 1n) === 0n) return fault(0);
      if (reservedBitsSet(entry, level, regs) !== 0n) return fault(PF_P | PF_RSVD);
      usedPa.push(pa);
      usedValue.push(entry);
      user &&= (entry & 4n) !== 0n;
      writable &&= (entry & 2n) !== 0n;
      xd ||= entry >> 63n === 1n;
      if (level === 1 || ((level === 2 || level === 3) && (entry & 0x80n) !== 0n)) {
        leaf = entry;
        leafLevel = level;
        break;
      }
      table = Number(entry & FRAME_MASK);
    }
    const rights: Rights = { user, writable, xd, pkey: Number((leaf >> 59n) & 0xfn) };
    const allowed = rightsAllow(regs, access, rights);
    const pk = pkeyDenies(regs, access, rights);
    if (!allowed || pk) return fault(PF_P | (pk ? PF_PK : 0));
    const last = usedPa.length - 1;
    for (let i = 0; i <= last; i++) {
      const bits = i === last && access.kind === 'write' ? 0x60n : 0x20n;
      const value = usedValue[i];
      if ((value & bits) === bits) continue;
      const upa = usedPa[i];
      yield rmwEffect(mem.lineOf(upa), 'page walk A/D');
      const now = mem.read64(upa);
      if (now !== value) continue restart;
      mem.write64(upa, now | bits);
      if (i === last) leaf = now | bits;
    }
    const pageSize = (leafLevel === 1 ? 4096 : leafLevel === 2 ? 2097152 : 1073741824) as PageSize;
    const frame = leaf & ADDR_MASK & ~BigInt(pageSize - 1);
    return { result: { ok: true, pa: frame | (va & BigInt(pageSize - 1)), pageSize }, leaf, rights };
  }
}
