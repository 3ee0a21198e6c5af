import { InvalidArgumentError } from './errors.js';

/** Rights bits of a TLB entry. */
export const TLB_VALID = 1;
export const TLB_W = 2;
export const TLB_U = 4;
export const TLB_XD = 8;
export const TLB_D = 16;
export const TLB_G = 32;

/**
 * One page-size class of a {@link Tlb}: a direct-mapped array of entries. The slot of a page is its virtual
 * page number modulo the number of entries.
 */
export class TlbArray {
  /** Virtual page number (address >> page shift) of each slot, or -1. */
  readonly tag: Float64Array;
  /** PCID of each slot. */
  readonly pcid: Int16Array;
  /** Physical base address of the page. */
  readonly base: Float64Array;
  /** Rights bits ({@link TLB_VALID} ...) with the protection key in bits 11:8. */
  readonly rights: Uint16Array;
  readonly mask: number;
  constructor(
    readonly entries: number,
    /** log2 of the page size (12, 21 or 30). */
    readonly shift: number,
  ) {
    if (!Number.isInteger(Math.log2(entries)) || entries < 1 || entries > 1 << 16) {
      throw new InvalidArgumentError(`TLB sizes must be powers of two up to 2^16, got ${entries}`);
    }
    this.tag = new Float64Array(entries).fill(-1);
    this.pcid = new Int16Array(entries);
    this.base = new Float64Array(entries);
    this.rights = new Uint16Array(entries);
    this.mask = entries - 1;
  }
  /** Drops slot `s`. */
  drop(s: number): void {
    this.tag[s] = -1;
    this.rights[s] = 0;
  }
  /** Drops every entry for which `keep` is false. */
  filter(keep: (pcid: number, rights: number) => boolean): void {
    for (let s = 0; s < this.entries; s++) {
      if (this.tag[s] >= 0 && !keep(this.pcid[s], this.rights[s])) this.drop(s);
    }
  }
  /** Number of valid entries. */
  count(): number {
    let n = 0;
    for (let s = 0; s < this.entries; s++) if (this.tag[s] >= 0) n++;
    return n;
  }
}

/** Sizes of a {@link Tlb}. */
export type TlbOptions = {
  /** Entries for 4 KiB pages (power of two, default 1024). */
  readonly entries4k?: number;
  /** Entries for 2 MiB pages (default 32). */
  readonly entries2m?: number;
  /** Entries for 1 GiB pages (default 16). */
  readonly entries1g?: number;
};

/**
 * One CPU's TLB (Intel SDM Vol. 3A, 4.10): direct-mapped arrays for 4 KiB, 2 MiB and 1 GiB translations,
 * each entry tagged with its PCID, global entries matching every PCID. An entry caches the physical page,
 * the rights combined over the walk (R/W, U/S, XD), D of the leaf and the protection key; PKRU, CR0.WP,
 * SMEP and SMAP are applied at access time, as the hardware does.
 *
 * The TLB never looks at memory after a fill: an entry stays usable after the page tables change, until
 * INVLPG, INVPCID, a CR3 load or a full flush removes it (or a conflicting fill evicts it), so a missing
 * flush shows as a stale translation. Paging-structure caches are not modelled (every miss walks from CR3).
 */
export class Tlb {
  readonly small: TlbArray;
  readonly mid: TlbArray;
  readonly huge: TlbArray;
  hits = 0;
  misses = 0;
  /**
   * The flush generation: incremented by every invalidation request (INVLPG, INVPCID, a CR3 load that
   * flushes, a full flush), whether or not it dropped an entry. A user access reads it when its translation
   * is done and again when its data access happens: a change means this CPU took a flush (a shootdown IPI)
   * in between, so the access is restarted, as the hardware restarts an instruction interrupted before it
   * completed. Like Linux's per-CPU `tlb_gen` in `cpu_tlbstate` (arch/x86/mm/tlb.c), but counted per CPU
   * rather than per mm.
   */
  flushGeneration = 0;
  constructor(opts: TlbOptions = {}) {
    this.small = new TlbArray(opts.entries4k ?? 1024, 12);
    this.mid = new TlbArray(opts.entries2m ?? 32, 21);
    this.huge = new TlbArray(opts.entries1g ?? 16, 30);
  }
  /** Drops the entries for the page containing the address (hi:lo) that match `pcid`, or are global if `global`. */
  invalidate(hi: number, lo: number, pcid: number, global: boolean): void {
    this.flushGeneration++;
    for (const a of [this.small, this.mid, this.huge]) {
      const sh = a.shift;
      const vpn = hi * 2 ** (32 - sh) + Math.floor(lo / 2 ** sh);
      const s = ((hi << (32 - sh)) | (lo >>> sh)) & a.mask;
      if (a.tag[s] !== vpn) continue;
      if (a.pcid[s] === pcid || (global && (a.rights[s] & TLB_G) !== 0)) a.drop(s);
    }
  }
  /** Drops the non-global entries of `pcid`. */
  flushPcid(pcid: number): void {
    this.flushGeneration++;
    for (const a of [this.small, this.mid, this.huge]) {
      a.filter((p, r) => (r & TLB_G) !== 0 || p !== pcid);
    }
  }
  /** Drops every non-global entry, of every PCID. */
  flushNonGlobal(): void {
    this.flushGeneration++;
    for (const a of [this.small, this.mid, this.huge]) a.filter((_p, r) => (r & TLB_G) !== 0);
  }
  /** Drops everything, global entries included. */
  flushAll(): void {
    this.flushGeneration++;
    for (const a of [this.small, this.mid, this.huge]) a.filter(() => false);
  }
  /** Number of valid entries. */
  size(): number {
    return this.small.count() + this.mid.count() + this.huge.count();
  }
}
