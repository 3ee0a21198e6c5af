import type { PagingRegs, WalkAccess, WalkMemory, WalkResult } from '@spf/pagetable';

// Lab 1: walk the x86-64 4-level page tables (Intel SDM Vol. 3A, sections 4.5 to 4.7).
//
// Translate the virtual address `va` for `access` under the paging registers `regs`:
//   1. A non-canonical address (bits 63:47 not all equal) raises #GP: return { ok: false, fault: 'GP' }.
//   2. Start at the table whose physical address is in regs.cr3 and read one 8-byte entry per level
//      with mem.readEntry(tableAddress + index * 8n). Each level takes 9 bits of `va` as its index.
//   3. Stop with a #PF when an entry is not present, or has a reserved bit set.
//   4. A PDPTE or PDE with PS set maps a 1 GiB or 2 MiB page; the PTE always maps a 4 KiB page.
//   5. Check the access against the rights of *all* levels (R/W, U/S, XD, plus CR0.WP, SMEP and SMAP).
//      Protection keys (CR4.PKE) stay off in this lab.
//   6. On success set the accessed bit in every entry you used (mem.setBits), and the dirty bit in the
//      leaf entry on a write; then return { ok: true, pa, pageSize }.
// A #PF result is { ok: false, fault: 'PF', errorCode, cr2: va } with the error-code bits below.

// Entry bits.
const P = 1n << 0n;
const RW = 1n << 1n;
const US = 1n << 2n;
const A = 1n << 5n;
const D = 1n << 6n;
const PS = 1n << 7n;
const XD = 1n << 63n;

// #PF error-code bits.
const PF_P = 1;
const PF_WRITE = 2;
const PF_USER = 4;
const PF_RSVD = 8;
const PF_INSTR = 16;

export function walk(mem: WalkMemory, regs: PagingRegs, va: bigint, access: WalkAccess): WalkResult {
  // TODO: replace this with the walk. For now every access faults as if nothing were mapped.
  void [mem, P, RW, US, A, D, PS, XD, PF_P, PF_RSVD];
  return {
    ok: false,
    fault: 'PF',
    errorCode:
      (access.kind === 'write' ? PF_WRITE : 0) |
      (access.user ? PF_USER : 0) |
      (access.kind === 'fetch' && (regs.nxe || regs.smep) ? PF_INSTR : 0),
    cr2: va,
  };
}
