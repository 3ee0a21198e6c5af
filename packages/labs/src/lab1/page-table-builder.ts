import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_NX,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
} from '@spf/pagetable';
import type { PagingRegs, WalkMemory } from './walk-types.js';

/**
 * Entry bits used to build page tables in Lab 1's tests, under the Intel SDM's names (Vol. 3A, 4.5); the
 * values are @spf/pagetable's.
 */
export const PTE_P = _PAGE_PRESENT;
export const PTE_RW = _PAGE_RW;
export const PTE_US = _PAGE_USER;
export const PTE_A = _PAGE_ACCESSED;
export const PTE_D = _PAGE_DIRTY;
export const PTE_PS = _PAGE_PSE;
export const PTE_XD = _PAGE_NX;

/** A sparse physical memory of 8-byte entries; every `setBits` is recorded so tests can check A/D updates. */
export class TestMemory implements WalkMemory {
  readonly entries = new Map<bigint, bigint>();
  readonly setBitsCalls: Array<{ readonly paddr: bigint; readonly bits: bigint }> = [];
  readEntry(paddr: bigint): bigint {
    if (typeof paddr !== 'bigint' || paddr % 8n !== 0n) {
      throw new TypeError(`readEntry(${String(paddr)}): entry addresses are 8-byte aligned bigints`);
    }
    return this.entries.get(paddr) ?? 0n;
  }
  setBits(paddr: bigint, bits: bigint): void {
    if (typeof paddr !== 'bigint' || typeof bits !== 'bigint') {
      throw new TypeError('setBits(paddr, bits): both arguments are bigints');
    }
    this.setBitsCalls.push({ paddr, bits });
    this.entries.set(paddr, this.readEntry(paddr) | bits);
  }
}

/** Page sizes by name. */
export const SIZE_4K = 4096n;
export const SIZE_2M = 2n * 1024n * 1024n;
export const SIZE_1G = 1024n * 1024n * 1024n;

const SHIFTS = [39n, 30n, 21n, 12n];
const ADDR_MASK = ((1n << 52n) - 1n) & ~0xfffn;

/** Options of one mapping. */
export type MapOptions = {
  readonly size?: bigint;
  /** Flags of the leaf entry (default P|RW|US). */
  readonly leaf?: bigint;
  /** Flags of the upper-level entries this mapping creates (default P|RW|US). */
  readonly upper?: bigint;
};

/**
 * Builds 4-level page tables in a {@link TestMemory}: tables are allocated from 1 MiB upwards, so they never
 * overlap the data frames tests map (at 1 GiB and above).
 */
export class PageTableBuilder {
  readonly mem = new TestMemory();
  readonly cr3: bigint;
  private nextTable = 0x100000n;
  constructor() {
    this.cr3 = this.allocTable();
  }
  private allocTable(): bigint {
    const t = this.nextTable;
    this.nextTable += 0x1000n;
    return t;
  }
  /** Paging registers for this table: NXE and WP on, SMEP/SMAP/PKE off, MAXPHYADDR 46. */
  regs(over: Partial<PagingRegs> = {}): PagingRegs {
    return {
      cr3: this.cr3,
      wp: true,
      smep: false,
      smap: false,
      pke: false,
      la57: false,
      nxe: true,
      ac: false,
      pkru: 0,
      maxPhyAddr: 46,
      ...over,
    };
  }
  /** Maps `va` to `pa` (both aligned to the page size); returns the entry addresses used, top level first. */
  map(va: bigint, pa: bigint, opts: MapOptions = {}): bigint[] {
    const size = opts.size ?? SIZE_4K;
    const leafFlags = opts.leaf ?? PTE_P | PTE_RW | PTE_US;
    const upper = opts.upper ?? PTE_P | PTE_RW | PTE_US;
    const leafLevel = size === SIZE_1G ? 1 : size === SIZE_2M ? 2 : 3;
    if (va % size !== 0n || pa % size !== 0n) throw new RangeError('map: va and pa must be size-aligned');
    let table = this.cr3;
    const used: bigint[] = [];
    for (let level = 0; level <= leafLevel; level++) {
      const addr = table + ((va >> SHIFTS[level]) & 0x1ffn) * 8n;
      used.push(addr);
      if (level === leafLevel) {
        this.mem.entries.set(addr, pa | leafFlags | (leafLevel < 3 ? PTE_PS : 0n));
        break;
      }
      let e = this.mem.entries.get(addr) ?? 0n;
      if ((e & PTE_P) === 0n) {
        e = this.allocTable() | upper;
        this.mem.entries.set(addr, e);
      }
      table = e & ADDR_MASK;
    }
    return used;
  }
  /** The address of the entry at `level` (0 = PML4E ... 3 = PTE) on the path of `va`. */
  entryAddr(va: bigint, level: number): bigint {
    let table = this.cr3;
    for (let l = 0; ; l++) {
      const addr = table + ((va >> SHIFTS[l]) & 0x1ffn) * 8n;
      if (l === level) return addr;
      table = (this.mem.entries.get(addr) ?? 0n) & ADDR_MASK;
    }
  }
  /** Reads the entry at `level` on the path of `va`. */
  entry(va: bigint, level: number): bigint {
    return this.mem.readEntry(this.entryAddr(va, level));
  }
  /** Replaces the entry at `level` on the path of `va` with `f(old)`. */
  edit(va: bigint, level: number, f: (e: bigint) => bigint): void {
    const addr = this.entryAddr(va, level);
    this.mem.entries.set(addr, f(this.mem.readEntry(addr)));
  }
}

/** A virtual address with the given index at each level plus an offset (4-level, lower half unless idx0 >= 256). */
export function vaOf(i0: number, i1: number, i2: number, i3: number, offset = 0n): bigint {
  const va = (BigInt(i0) << 39n) | (BigInt(i1) << 30n) | (BigInt(i2) << 21n) | (BigInt(i3) << 12n) | offset;
  return i0 >= 256 ? va | (0xffffn << 48n) : va;
}
