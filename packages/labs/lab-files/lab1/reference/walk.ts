import type { PagingRegs, WalkAccess, WalkMemory, WalkResult } from '@spf/pagetable';

// Lab 1 reference solution: the x86-64 4-level page walk (Intel SDM Vol. 3A, 4.5 and 4.6).

// Entry bits.
const P = 1n << 0n; // present
const RW = 1n << 1n; // writable
const US = 1n << 2n; // user-accessible
const A = 1n << 5n; // accessed
const D = 1n << 6n; // dirty (leaf entries only)
const PS = 1n << 7n; // page size: this PDPTE or PDE maps a 1 GiB or 2 MiB page
const XD = 1n << 63n; // execute-disable (only when EFER.NXE = 1)

// #PF error-code bits.
const PF_P = 1; // the fault was a protection violation (0: not present)
const PF_WRITE = 2;
const PF_USER = 4;
const PF_RSVD = 8;
const PF_INSTR = 16;

// The four levels: the shift of the index each one takes from the address.
const LEVELS = [
  { name: 'PML4E', shift: 39n },
  { name: 'PDPTE', shift: 30n },
  { name: 'PDE', shift: 21n },
  { name: 'PTE', shift: 12n },
] as const;

/** Bits 51:maxPhyAddr of an entry (they must be zero in a present entry). */
function addressReserved(maxPhyAddr: number): bigint {
  return ((1n << 52n) - 1n) & ~((1n << BigInt(maxPhyAddr)) - 1n);
}

/** Bits 51:12 of an entry: the physical address it points to, within MAXPHYADDR. */
function frameMask(maxPhyAddr: number): bigint {
  return ((1n << BigInt(maxPhyAddr)) - 1n) & ~0xfffn;
}

/** True if a present entry at `level` (0 = PML4E) has a reserved bit set. */
function reservedBitsSet(e: bigint, level: number, regs: PagingRegs): boolean {
  if ((e & addressReserved(regs.maxPhyAddr)) !== 0n) return true;
  if (!regs.nxe && (e & XD) !== 0n) return true;
  if (level === 0 && (e & PS) !== 0n) return true; // no 512 GiB pages
  if (level === 1 && (e & PS) !== 0n && (e & 0x3fffe000n) !== 0n) return true; // 1 GiB: bits 29:13
  if (level === 2 && (e & PS) !== 0n && (e & 0x1fe000n) !== 0n) return true; // 2 MiB: bits 20:13
  return false;
}

/** Bits of the error code every #PF carries: what kind of access it was. */
function accessBits(regs: PagingRegs, access: WalkAccess): number {
  let code = 0;
  if (access.kind === 'write') code |= PF_WRITE;
  if (access.user) code |= PF_USER;
  if (access.kind === 'fetch' && (regs.nxe || regs.smep)) code |= PF_INSTR;
  return code;
}

export function walk(mem: WalkMemory, regs: PagingRegs, va: bigint, access: WalkAccess): WalkResult {
  // A 4-level address is canonical when bits 63:47 are all copies of bit 47.
  const top = va >> 47n;
  if (top !== 0n && top !== (1n << 17n) - 1n) return { ok: false, fault: 'GP' };

  const fault = (extra: number): WalkResult => ({
    ok: false,
    fault: 'PF',
    errorCode: accessBits(regs, access) | extra,
    cr2: va,
  });

  let table = regs.cr3 & frameMask(regs.maxPhyAddr);
  let writable = true;
  let user = true;
  let executable = true;
  const used: bigint[] = [];
  for (let level = 0; level < LEVELS.length; level++) {
    const { shift } = LEVELS[level];
    const addr = table + ((va >> shift) & 0x1ffn) * 8n;
    const e = mem.readEntry(addr);
    if ((e & P) === 0n) return fault(0);
    if (reservedBitsSet(e, level, regs)) return fault(PF_P | PF_RSVD);
    writable &&= (e & RW) !== 0n;
    user &&= (e & US) !== 0n;
    if (regs.nxe && (e & XD) !== 0n) executable = false;
    used.push(addr);

    const leaf = level === 3 || (level > 0 && (e & PS) !== 0n);
    if (!leaf) {
      table = e & frameMask(regs.maxPhyAddr);
      continue;
    }

    // Permission checks on the combined rights of every level (SDM 4.6).
    const pageSize = 1n << shift;
    const write = access.kind === 'write';
    let allowed = true;
    if (access.user) {
      if (!user) allowed = false;
      if (write && !writable) allowed = false;
      if (access.kind === 'fetch' && !executable) allowed = false;
    } else if (access.kind === 'fetch') {
      if (!executable) allowed = false;
      if (user && regs.smep) allowed = false;
    } else {
      if (user && regs.smap && (access.implicit || !regs.ac)) allowed = false;
      if (write && regs.wp && !writable) allowed = false;
    }
    // (Protection keys, CR4.PKE, are off in this lab, so the PK bit of the error code never appears.)
    if (!allowed) return fault(PF_P);

    // Success: mark every entry used as accessed, and the leaf dirty on a write.
    for (const u of used) mem.setBits(u, A);
    if (write) mem.setBits(addr, D);
    const base = e & frameMask(regs.maxPhyAddr) & ~(pageSize - 1n);
    return {
      ok: true,
      pa: base | (va & (pageSize - 1n)),
      pageSize: Number(pageSize) as 4096 | 2097152 | 1073741824,
    };
  }
  throw new Error('unreachable: the PTE level is always a leaf');
}
