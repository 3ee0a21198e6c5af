import { type Kernel, readEffect, rmwEffect } from '@spf/machine';
import { isCanonical } from './canonical.js';
import {
  accessErrorBits,
  checkPagingRegs,
  pkeyDenies,
  type Rights,
  reservedBitsSetHalves,
  rightsAllow,
} from './paging-rules.js';
import { entryFromHalves, type PhysicalMemory } from './physical-memory.js';
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
/** By the level of the leaf (1: 4 KiB, 2: 2 MiB, 3: 1 GiB): the bits of the address within the page. */
const PAGE_OFFSET_MASK: readonly bigint[] = [0n, 0xfffn, 0x1f_ffffn, 0x3fff_ffffn];
/** By the level of the leaf: the bits of the leaf entry that hold the page's frame address. */
const LEAF_FRAME_MASK: readonly bigint[] = PAGE_OFFSET_MASK.map((m) => ADDR_MASK & ~m);

/** The #PF outcome of a walk (a function, not a closure allocated on every walk). */
function walkFault(va: bigint, accessBits: number, bits: number): KernelWalkOutcome {
  return {
    result: { ok: false, fault: 'PF', errorCode: accessBits | bits, cr2: va },
    leaf: 0n,
    rights: NO_RIGHTS,
  };
}

/**
 * The hardware page walk as kernel code for a Machine: the same rules as `referenceWalk` (Intel SDM Vol. 3A,
 * 4.5 to 4.8), but each entry read is a read effect on the entry's memory line and each A/D update is a
 * locked RMW. The update only ORs the bits in if the entry still holds the value the walk read; if another
 * CPU changed it in between, the walk starts again from CR3 (the SDM requires A/D updates to be atomic with
 * respect to other accesses to the entry; restarting is how we keep the update from resurrecting a cleared
 * entry). A table frame freed under the walker raises `UseAfterFreeError` at the read.
 *
 * The walk is part of one instruction, and the hardware takes interrupts only between instructions. In the
 * simulator the CPU may run an interrupt handler (a TLB-shootdown IPI) between two of the walk's effects;
 * with `flushGeneration` (the CPU's `Tlb.flushGeneration`), the walk checks after every effect whether a
 * flush happened since it started and, if so, starts again from CR3 before using what it read, as the
 * instruction would be re-executed after the interrupt. Without it, a shootdown that completed (and let the
 * unmapping CPU free a page table) in the middle of the walk would make the walk read a freed table or fill
 * the TLB with a translation the shootdown removed: something real hardware cannot do.
 *
 * Entries are examined as two 32-bit halves (no BigInt per entry on this hot path); the property test in
 * page-tables.test.ts checks it against `referenceWalk` and the MMU's fast walk.
 */
export function* kernelWalk(
  mem: PhysicalMemory,
  regs: PagingRegs,
  va: bigint,
  access: WalkAccess,
  flushGeneration?: () => number,
): Kernel<KernelWalkOutcome> {
  checkPagingRegs(regs);
  if (!isCanonical(va, regs.la57)) return { result: { ok: false, fault: 'GP' }, leaf: 0n, rights: NO_RIGHTS };
  const accessBits = accessErrorBits(regs, access);
  const vaLo = Number(va & 0xffff_ffffn);
  const vaHi = Number(va >> 32n);
  const isWrite = access.kind === 'write';
  restart: for (;;) {
    const gen = flushGeneration?.() ?? 0;
    let table = Number(regs.cr3 & FRAME_MASK);
    let user = true;
    let writable = true;
    let xd = false;
    // The entries used, three numbers each (address, bits 31:0, bits 63:32), top level first.
    const used: number[] = [];
    let leafLo = 0;
    let leafHi = 0;
    let leafLevel = 1;
    for (let level = regs.la57 ? 5 : 4; level >= 1; level--) {
      // Bits 12 + 9 * (level - 1) up of the address: the index into this level's table.
      const index =
        level === 1
          ? (vaLo >>> 12) & 511
          : level === 2
            ? (vaLo >>> 21) & 511
            : level === 3
              ? ((vaLo >>> 30) | (vaHi << 2)) & 511
              : level === 4
                ? (vaHi >>> 7) & 511
                : (vaHi >>> 16) & 511;
      const pa = table + index * 8;
      yield readEffect(mem.lineOf(pa), 'page walk');
      if (flushGeneration !== undefined && flushGeneration() !== gen) continue restart;
      const lo = mem.walkReadLow(pa);
      const hi = mem.walkHigh;
      if ((lo & 1) === 0) return walkFault(va, accessBits, 0);
      if (reservedBitsSetHalves(lo, hi, level, regs)) return walkFault(va, accessBits, PF_P | PF_RSVD);
      used.push(pa, lo, hi);
      user &&= (lo & 4) !== 0;
      writable &&= (lo & 2) !== 0;
      xd ||= hi >>> 31 === 1;
      if (level === 1 || ((level === 2 || level === 3) && (lo & 0x80) !== 0)) {
        leafLo = lo;
        leafHi = hi;
        leafLevel = level;
        break;
      }
      // Bits 51:12 of the entry.
      table = (hi & 0xf_ffff) * 4294967296 + ((lo & 0xffff_f000) >>> 0);
    }
    const rights: Rights = { user, writable, xd, pkey: (leafHi >>> 27) & 0xf };
    const allowed = rightsAllow(regs, access, rights);
    const pk = pkeyDenies(regs, access, rights);
    if (!allowed || pk) return walkFault(va, accessBits, PF_P | (pk ? PF_PK : 0));
    const last = used.length - 3;
    for (let i = 0; i <= last; i += 3) {
      const bits = i === last && isWrite ? 0x60 : 0x20;
      if ((used[i + 1] & bits) === bits) continue;
      const upa = used[i];
      yield rmwEffect(mem.lineOf(upa), 'page walk A/D');
      if (flushGeneration !== undefined && flushGeneration() !== gen) continue restart;
      const nowLo = mem.read64Low(upa);
      if (nowLo !== used[i + 1] || mem.walkHigh !== used[i + 2]) continue restart;
      mem.setLowBits(upa, bits);
      if (i === last) leafLo = (nowLo | bits) >>> 0;
    }
    const leaf = entryFromHalves(leafHi, leafLo);
    const pageSize = (leafLevel === 1 ? 4096 : leafLevel === 2 ? 2097152 : 1073741824) as PageSize;
    const pa = (leaf & LEAF_FRAME_MASK[leafLevel]) | (va & PAGE_OFFSET_MASK[leafLevel]);
    return { result: { ok: true, pa, pageSize }, leaf, rights };
  }
}
