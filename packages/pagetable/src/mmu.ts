import type { Kernel } from '@spf/machine';
import { isCanonical } from './canonical.js';
import {
  type CpuFeatures,
  checkControlBit,
  checkInvpcid,
  MODERN_CPU_FEATURES,
  resolveCpuFeatures,
} from './cpu-features.js';
import { PAGE_SIZE } from './entry-bits.js';
import { InvalidArgumentError } from './errors.js';
import { kernelWalk } from './kernel-walk.js';
import type { PageTables, VirtAddr } from './page-tables.js';
import { FrameState, type PhysicalMemory } from './physical-memory.js';
import { TLB_D, TLB_G, TLB_U, TLB_VALID, TLB_W, TLB_XD, Tlb, type TlbArray, type TlbOptions } from './tlb.js';
import type { PageSize, PagingRegs, WalkAccess, WalkMemory, WalkResult, Walker } from './walker.js';
import { PF_INSTR, PF_P, PF_PK, PF_RSVD, PF_USER, PF_WRITE } from './walker.js';

/** Access bits of {@link Mmu.access} (chosen to line up with the #PF error-code bits W, U and I). */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = PF_WRITE;
export const ACCESS_USER = PF_USER;
export const ACCESS_FETCH = PF_INSTR;
/** An implicit supervisor-mode access (SMAP applies as if EFLAGS.AC = 0). */
export const ACCESS_IMPLICIT = 64;

/** Converts a {@link WalkAccess} to access bits. */
export function accessBits(a: WalkAccess): number {
  let b = a.kind === 'write' ? ACCESS_WRITE : a.kind === 'fetch' ? ACCESS_FETCH : 0;
  if (a.user) b |= ACCESS_USER;
  else if (a.implicit) b |= ACCESS_IMPLICIT;
  return b;
}
/** Converts access bits back to a {@link WalkAccess}. */
export function accessFromBits(b: number): WalkAccess {
  const kind = b & ACCESS_WRITE ? 'write' : b & ACCESS_FETCH ? 'fetch' : 'read';
  return { kind, user: (b & ACCESS_USER) !== 0, implicit: (b & ACCESS_IMPLICIT) !== 0 };
}

/**
 * The paging state of one CPU: CR3 (with its PCID), the control bits that affect translation, PKRU, IA32_PKRS,
 * CR2, and the CPU's {@link Tlb}. Change control bits directly (`cpu.smap = true`); change CR3 through
 * {@link Mmu.loadCr3} or {@link Mmu.switchMm} so the TLB is flushed as the SDM says.
 *
 * Setting a CR4 or EFER bit whose feature the CPU lacks ({@link features}, SDM 4.1.4) throws
 * `UnsupportedCpuFeatureError` and leaves the bit clear: on hardware that MOV to CR4 or WRMSR is a #GP(0).
 */
export class CpuPaging {
  /** CR3's page-table base (physical address, 4 KiB aligned). */
  cr3 = 0;
  /** The current PCID (CR3 bits 11:0 when CR4.PCIDE = 1; 0 otherwise). */
  pcid = 0;
  /** CR0.WP (Linux sets it). */
  wp = true;
  /** EFLAGS.AC. */
  ac = false;
  /** PKRU. */
  pkru = 0;
  /** IA32_PKRS (MSR 6E1H): the supervisor keys' AD and WD bits, laid out as in PKRU; used when CR4.PKS = 1. */
  pkrs = 0;
  /** CR2: the linear address of the last #PF. */
  cr2: bigint = 0n;
  /** The address space last switched to with {@link Mmu.switchMm}. */
  mm: PageTables | null = null;
  readonly tlb: Tlb;
  private cr4Pcide = false;
  private cr4Smep = false;
  private cr4Smap = false;
  private cr4Pke = false;
  private cr4Pks = false;
  private cr4La57 = false;
  private cr4Pge: boolean;
  private eferNxe: boolean;
  constructor(
    readonly id: number,
    tlb: TlbOptions,
    private readonly maxPhyAddr: number,
    /** What this CPU enumerates through CPUID (SDM 4.1.4); every CPU of an {@link Mmu} has the same. */
    readonly features: CpuFeatures = MODERN_CPU_FEATURES,
  ) {
    this.tlb = new Tlb(tlb);
    // Linux turns both on when the CPU has them (x86_configure_nx(), cr4_set_bits(X86_CR4_PGE)).
    this.eferNxe = features.nx;
    this.cr4Pge = features.pge;
  }
  /** CR4.PCIDE (needs `features.pcid`). */
  get pcide(): boolean {
    return this.cr4Pcide;
  }
  set pcide(v: boolean) {
    checkControlBit(this.features, 'pcide', v);
    this.cr4Pcide = v;
  }
  /** CR4.SMEP (needs `features.smep`). */
  get smep(): boolean {
    return this.cr4Smep;
  }
  set smep(v: boolean) {
    checkControlBit(this.features, 'smep', v);
    this.cr4Smep = v;
  }
  /** CR4.SMAP (needs `features.smap`). */
  get smap(): boolean {
    return this.cr4Smap;
  }
  set smap(v: boolean) {
    checkControlBit(this.features, 'smap', v);
    this.cr4Smap = v;
  }
  /** CR4.PKE (needs `features.pku`). */
  get pke(): boolean {
    return this.cr4Pke;
  }
  set pke(v: boolean) {
    checkControlBit(this.features, 'pke', v);
    this.cr4Pke = v;
  }
  /** CR4.PKS (needs `features.pks`). */
  get pks(): boolean {
    return this.cr4Pks;
  }
  set pks(v: boolean) {
    checkControlBit(this.features, 'pks', v);
    this.cr4Pks = v;
  }
  /** CR4.LA57 (needs `features.la57`). */
  get la57(): boolean {
    return this.cr4La57;
  }
  set la57(v: boolean) {
    checkControlBit(this.features, 'la57', v);
    this.cr4La57 = v;
  }
  /**
   * CR4.PGE (needs `features.pge`; on by default when the CPU has it, as Linux sets it). With PGE = 0 the G bit
   * of an entry is ignored: the TLB caches no global translations (SDM 4.10.2.4).
   */
  get pge(): boolean {
    return this.cr4Pge;
  }
  set pge(v: boolean) {
    checkControlBit(this.features, 'pge', v);
    this.cr4Pge = v;
  }
  /** IA32_EFER.NXE (needs `features.nx`; on by default when the CPU has NX, as Linux sets it). */
  get nxe(): boolean {
    return this.eferNxe;
  }
  set nxe(v: boolean) {
    checkControlBit(this.features, 'nxe', v);
    this.eferNxe = v;
  }
  /** The state as {@link PagingRegs} (what a {@link Walker} receives). */
  regs(): PagingRegs {
    // The last snapshot serves while no register it holds has changed (the registers are plain fields, so
    // the check compares them all): a walk per TLB miss then allocates no register object and no BigInt.
    const c = this.regsCache;
    if (
      c !== null &&
      this.regsCr3 === this.cr3 &&
      c.wp === this.wp &&
      c.smep === this.cr4Smep &&
      c.smap === this.cr4Smap &&
      c.pke === this.cr4Pke &&
      c.pks === this.cr4Pks &&
      c.la57 === this.cr4La57 &&
      c.nxe === this.eferNxe &&
      c.ac === this.ac &&
      c.pkru === this.pkru &&
      c.pkrs === this.pkrs
    ) {
      return c;
    }
    this.regsCr3 = this.cr3;
    this.regsCache = this.makeRegs();
    return this.regsCache;
  }
  private regsCache: PagingRegs | null = null;
  private regsCr3 = 0;
  /**
   * `() => tlb.flushGeneration`, made once: what {@link Mmu.translateKernel} hands each page walk to notice a
   * TLB flush in the middle of it.
   */
  readonly flushGeneration = (): number => this.tlb.flushGeneration;
  private makeRegs(): PagingRegs {
    return {
      cr3: BigInt(this.cr3),
      wp: this.wp,
      smep: this.cr4Smep,
      smap: this.cr4Smap,
      pke: this.cr4Pke,
      pks: this.cr4Pks,
      la57: this.cr4La57,
      nxe: this.eferNxe,
      ac: this.ac,
      pkru: this.pkru,
      pkrs: this.pkrs,
      maxPhyAddr: this.maxPhyAddr,
      features: this.features,
    };
  }
}

/** How an {@link Mmu} is built. */
export type MmuOptions = {
  /** Number of CPUs (default 1). */
  readonly cpus?: number;
  /**
   * Replaces the built-in walk (Lab 1's injection point). The walker reads entries through a
   * {@link WalkMemory} view of physical memory. With a walker, the TLB is bypassed (every access walks):
   * the walker returns no rights to cache, and a TLB that caches nothing is allowed by the SDM.
   */
  readonly walker?: Walker;
  /** TLB sizes. */
  readonly tlb?: TlbOptions;
  /**
   * The paging features every CPU enumerates (SDM 4.1.4); features left out are present. Default: a modern
   * CPU with all of them ({@link MODERN_CPU_FEATURES}). MAXPHYADDR comes from `mem.maxPhyAddr`.
   */
  readonly cpuFeatures?: Partial<CpuFeatures>;
};

/** The last fault reported by {@link Mmu.access}. */
export type FaultInfo = {
  kind: 'PF' | 'GP' | null;
  errorCode: number;
  cr2: number;
};

const MAX_LEVELS = 5;

/**
 * The x86-64 MMU of a machine with one or more CPUs: translates linear addresses through the page tables in
 * {@link PhysicalMemory}, with a per-CPU TLB, exactly as Intel SDM Vol. 3A chapter 4 describes for 4-level
 * and 5-level paging (see `referenceWalk` for the rules and the A/D policy, which the built-in walk shares:
 * A in every entry used and D in the leaf for a write, set atomically and only when the access succeeds).
 *
 * Three entry points:
 * - {@link access}: the fast synchronous path on numbers (no allocation on a TLB hit); -1 on a fault with
 *   details in {@link fault}.
 * - {@link translate}: the same with bigint addresses and a {@link WalkResult}.
 * - {@link translateKernel}: kernel form for a Machine; on a TLB miss every entry read is a machine read
 *   effect and every A/D update a locked RMW, so the walk races visibly with page-table updates.
 */
export class Mmu {
  readonly mem: PhysicalMemory;
  readonly walker: Walker | null;
  /** What the CPUs enumerate (SDM 4.1.4). */
  readonly features: CpuFeatures;
  private readonly cpuStates: CpuPaging[];
  /** Details of the last fault returned by {@link access}. */
  readonly fault: FaultInfo = { kind: null, errorCode: 0, cr2: 0 };
  private readonly usedPfn = new Float64Array(MAX_LEVELS);
  private readonly usedIdx = new Int32Array(MAX_LEVELS);
  private fillRights = 0;
  private fillBase = 0;
  private fillShift = 12;
  private readonly walkMemory: WalkMemory;
  /** Mask of the address bits of an entry's upper word (bits MAXPHYADDR-1:32). */
  private readonly addrHi: number;

  constructor(mem: PhysicalMemory, opts: MmuOptions = {}) {
    const cpus = opts.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 1024) {
      throw new InvalidArgumentError(`cpus must be an integer from 1 to 1024, got ${cpus}`);
    }
    this.features = resolveCpuFeatures(opts.cpuFeatures);
    this.mem = mem;
    this.walker = opts.walker ?? null;
    this.addrHi = 2 ** (mem.maxPhyAddr - 32) - 1;
    this.cpuStates = Array.from(
      { length: cpus },
      (_, i) => new CpuPaging(i, opts.tlb ?? {}, mem.maxPhyAddr, this.features),
    );
    this.walkMemory = {
      readEntry: (pa: bigint): bigint => mem.walkRead(Number(pa)),
      setBits: (pa: bigint, bits: bigint): void => {
        const p = Number(pa);
        mem.write64(p, mem.walkRead(p) | bits);
      },
    };
  }

  /** Number of CPUs. */
  get cpuCount(): number {
    return this.cpuStates.length;
  }
  /** The paging state of `cpu`. */
  cpu(cpu: number): CpuPaging {
    const st = this.cpuStates[cpu];
    if (st === undefined) {
      throw new InvalidArgumentError(
        `CPU ${cpu} does not exist: this MMU has CPUs 0 to ${this.cpuStates.length - 1}`,
      );
    }
    return st;
  }
  /** A {@link WalkMemory} view of physical memory (what a custom walker reads through). */
  get memoryView(): WalkMemory {
    return this.walkMemory;
  }

  // ---- CR3 and TLB maintenance (SDM 4.10.4) ----------------------------------------------------------

  /**
   * MOV to CR3. With PCIDE = 0 it flushes every non-global entry; with PCIDE = 1 it flushes the non-global
   * entries of the new PCID unless `noFlush` (CR3 bit 63) is set.
   */
  loadCr3(cpu: number, pa: number, opts: { pcid?: number; noFlush?: boolean } = {}): void {
    const st = this.cpu(cpu);
    if (!Number.isSafeInteger(pa) || pa < 0 || pa % PAGE_SIZE !== 0 || pa >= 2 ** this.mem.maxPhyAddr) {
      throw new InvalidArgumentError(
        `CR3 must be a 4 KiB-aligned physical address below MAXPHYADDR, got ${pa}`,
      );
    }
    const pcid = opts.pcid ?? 0;
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > 4095 || (!st.pcide && pcid !== 0)) {
      throw new InvalidArgumentError(`PCID must be 0 to 4095, and 0 when CR4.PCIDE = 0; got ${pcid}`);
    }
    st.cr3 = pa;
    st.pcid = pcid;
    if (!st.pcide) st.tlb.flushNonGlobal();
    else if (!opts.noFlush) st.tlb.flushPcid(pcid);
  }

  /**
   * `switch_mm_irqs_off()` (arch/x86/mm/tlb.c), simplified: loads the address space's top table and PCID
   * (without a flush when PCIDs are on: shootdowns reach every CPU in `mm_cpumask`, which is never cleared
   * here, so entries kept under the PCID are up to date) and sets the CPU in the address space's cpumask.
   */
  switchMm(cpu: number, mm: PageTables): void {
    const st = this.cpu(cpu);
    st.la57 = mm.la57;
    mm.cpumask.set(cpu);
    st.mm = mm;
    this.loadCr3(cpu, mm.pgd, { pcid: st.pcide ? mm.pcid : 0, noFlush: st.pcide });
  }

  /** INVLPG: drops the entries for `va` in the current PCID, and global entries for it. */
  invlpg(cpu: number, va: VirtAddr): void {
    const st = this.cpu(cpu);
    const [hi, lo] = split(va);
    st.tlb.invalidate(hi, lo, st.pcid, true);
  }
  /**
   * INVPCID: type 0 drops one address of `pcid` (not global entries), 1 all non-global entries of `pcid`,
   * 2 everything including global entries, 3 every non-global entry. Without `features.invpcid` it throws
   * `UnsupportedCpuFeatureError` (#UD on hardware).
   */
  invpcid(cpu: number, type: 0 | 1 | 2 | 3, pcid = 0, va: VirtAddr = 0): void {
    const st = this.cpu(cpu);
    checkInvpcid(this.features);
    if (type === 0) {
      const [hi, lo] = split(va);
      st.tlb.invalidate(hi, lo, pcid, false);
    } else if (type === 1) st.tlb.flushPcid(pcid);
    else if (type === 2) st.tlb.flushAll();
    else if (type === 3) st.tlb.flushNonGlobal();
    else throw new InvalidArgumentError(`INVPCID type must be 0 to 3, got ${String(type)}`);
  }
  /** A full flush including global entries (toggling CR4.PGE). */
  flushAll(cpu: number): void {
    this.cpu(cpu).tlb.flushAll();
  }

  // ---- translation ----------------------------------------------------------------------------------

  /**
   * Translates `va` (a non-negative safe integer) for an access described by access bits
   * ({@link ACCESS_WRITE} | {@link ACCESS_USER} | {@link ACCESS_FETCH} | {@link ACCESS_IMPLICIT}). Returns the
   * physical address, or -1 with {@link fault} describing the #PF (error code, CR2) or #GP. The fast path.
   */
  access(cpu: number, va: number, acc: number): number {
    const st = this.cpuStates[cpu];
    if (st === undefined) this.cpu(cpu);
    if (!(va >= 0 && va < (st.la57 ? 72057594037927936 : 140737488355328))) {
      this.fault.kind = 'GP';
      this.fault.errorCode = 0;
      this.fault.cr2 = va;
      return -1;
    }
    const lo = va >>> 0;
    const hi = (va - lo) / 4294967296;
    if (this.walker !== null) return this.viaWalker(st, BigInt(va), acc);
    return this.core(st, hi, lo, acc);
  }

  /** Translates `va` for `access` on `cpu`; bigint or number addresses (kernel-half addresses need bigint). */
  translate(cpu: number, va: VirtAddr, access: WalkAccess): WalkResult {
    const st = this.cpu(cpu);
    const acc = accessBits(access);
    if (typeof va === 'number' && !Number.isSafeInteger(va)) {
      throw new InvalidArgumentError(`address ${va} is not a safe integer; pass it as a bigint`);
    }
    const big = BigInt(va);
    if (!isCanonical(big, st.la57)) return { ok: false, fault: 'GP' };
    if (this.walker !== null) {
      const r = this.walker(this.walkMemory, st.regs(), big, access);
      if (!r.ok && r.fault === 'PF') st.cr2 = r.cr2;
      return r;
    }
    const [hi, lo] = split(big);
    const pa = this.core(st, hi, lo, acc);
    if (pa < 0) return { ok: false, fault: 'PF', errorCode: this.fault.errorCode, cr2: big };
    return { ok: true, pa: BigInt(pa), pageSize: this.lastPageSize };
  }

  /** Page size of the last successful translation. */
  lastPageSize: PageSize = 4096;

  /**
   * Kernel form of {@link translate}: a TLB hit costs no memory effect; a miss walks with a read effect per
   * entry and a locked RMW per A/D update (restarting the walk if an entry changed in between, as the
   * hardware's locked update would), then fills the TLB. A walk during which this CPU's TLB was flushed (it
   * took a shootdown IPI between two of the walk's effects) starts over, so the fill never caches a
   * translation a completed shootdown removed (see `kernelWalk`). A walk during which CR3 was reloaded (the
   * task was preempted and another one switched address spaces) returns its result without caching it: the
   * caller must check that its address space is still current before using it.
   */
  *translateKernel(cpu: number, va: VirtAddr, access: WalkAccess): Kernel<WalkResult> {
    const st = this.cpu(cpu);
    // A safe-integer address (a user address, as the kernel passes them) is checked and split without a BigInt;
    // the BigInt is made only for a walk or a fault, which need it. Anything else takes the BigInt path, whose
    // conversion refuses what is not an integer.
    const addr = typeof va === 'number' && Number.isSafeInteger(va) ? va : BigInt(va);
    if (!isCanonical(addr, st.la57)) return { ok: false, fault: 'GP' };
    if (this.walker !== null) return this.translate(cpu, va, access);
    const acc = accessBits(access);
    const [hi, lo] = split(addr);
    const hit = this.tlbLookup(st, hi, lo, acc);
    if (hit >= 0) return { ok: true, pa: BigInt(hit), pageSize: this.lastPageSize };
    const big = BigInt(addr);
    if (hit === -2) {
      st.cr2 = big;
      return { ok: false, fault: 'PF', errorCode: this.fault.errorCode, cr2: big };
    }
    st.tlb.misses++;
    const cr3 = st.cr3;
    const pcid = st.pcid;
    const out = yield* kernelWalk(this.mem, st.regs(), big, access, st.flushGeneration);
    // A context switch (another task's CR3 load) while the walk was in flight: the result belongs to the
    // instruction that started it, not to the address space now current, so it is returned but not cached.
    if (st.cr3 !== cr3 || st.pcid !== pcid) return out.result;
    if (!out.result.ok) {
      if (out.result.fault === 'PF') st.cr2 = big;
      return out.result;
    }
    const r = out.rights;
    let rights = TLB_VALID | (r.pkey << 8);
    if (r.writable) rights |= TLB_W;
    if (r.user) rights |= TLB_U;
    if (r.xd) rights |= TLB_XD;
    if ((out.leaf & 0x40n) !== 0n) rights |= TLB_D;
    if ((out.leaf & 0x100n) !== 0n && st.pge) rights |= TLB_G;
    const size = out.result.pageSize;
    this.fillRights = rights;
    this.fillShift = size === 4096 ? 12 : size === 2097152 ? 21 : 30;
    this.fillBase = Number(out.result.pa) - (Number(out.result.pa) % size);
    this.fill(st, hi, lo);
    return out.result;
  }

  // ---- internals ------------------------------------------------------------------------------

  private viaWalker(st: CpuPaging, va: bigint, acc: number): number {
    const r = this.walker!(this.walkMemory, st.regs(), va, accessFromBits(acc));
    if (r.ok) {
      this.lastPageSize = r.pageSize;
      return Number(r.pa);
    }
    this.fault.kind = r.fault;
    this.fault.errorCode = r.fault === 'PF' ? r.errorCode : 0;
    this.fault.cr2 = Number(va);
    if (r.fault === 'PF') st.cr2 = va;
    return -1;
  }

  /** TLB then walk. */
  private core(st: CpuPaging, hi: number, lo: number, acc: number): number {
    const hit = this.tlbLookup(st, hi, lo, acc);
    if (hit >= 0) return hit;
    if (hit === -2) {
      st.cr2 = BigInt(hi) * 4294967296n + BigInt(lo);
      return -1;
    }
    st.tlb.misses++;
    const pa = this.walk(st, hi, lo, acc);
    if (pa < 0) {
      this.fault.cr2 = hi * 4294967296 + lo;
      st.cr2 = BigInt(hi) * 4294967296n + BigInt(lo);
      return -1;
    }
    this.fill(st, hi, lo);
    return pa;
  }

  /** Returns the physical address on a usable hit, -1 on a miss, -2 on a fault found with a TLB entry. */
  private tlbLookup(st: CpuPaging, hi: number, lo: number, acc: number): number {
    const tlb = st.tlb;
    let a: TlbArray = tlb.small;
    let s = ((hi << 20) | (lo >>> 12)) & a.mask;
    let vpn = hi * 1048576 + (lo >>> 12);
    let off = lo & 0xfff;
    let size: PageSize = 4096;
    if (a.tag[s] !== vpn || (a.pcid[s] !== st.pcid && (a.rights[s] & TLB_G) === 0)) {
      a = tlb.mid;
      vpn = hi * 2048 + (lo >>> 21);
      s = ((hi << 11) | (lo >>> 21)) & a.mask;
      off = lo & 0x1fffff;
      size = 2097152;
      if (a.tag[s] !== vpn || (a.pcid[s] !== st.pcid && (a.rights[s] & TLB_G) === 0)) {
        a = tlb.huge;
        vpn = hi * 4 + (lo >>> 30);
        s = ((hi << 2) | (lo >>> 30)) & a.mask;
        off = lo & 0x3fffffff;
        size = 1073741824;
        if (a.tag[s] !== vpn || (a.pcid[s] !== st.pcid && (a.rights[s] & TLB_G) === 0)) return -1;
      }
    }
    const r = a.rights[s];
    const code = this.denied(st, acc, r);
    // A permitted write through an entry whose D is clear must walk to set D (SDM 4.8).
    if (code === 0 && (acc & ACCESS_WRITE) !== 0 && (r & TLB_D) === 0) return -1;
    if (code !== 0) {
      // The #PF invalidates the entry used (SDM 4.10.4.1).
      a.drop(s);
      this.fault.kind = 'PF';
      this.fault.errorCode = code;
      this.fault.cr2 = hi * 4294967296 + lo;
      return -2;
    }
    tlb.hits++;
    this.lastPageSize = size;
    return a.base[s] + off;
  }

  /** 0 if rights `r` allow the access, else the #PF error code (with P = 1). SDM 4.6 and 4.7. */
  private denied(st: CpuPaging, acc: number, r: number): number {
    const userAcc = (acc & ACCESS_USER) !== 0;
    const uaddr = (r & TLB_U) !== 0;
    let bad = false;
    let pk = false;
    if ((acc & ACCESS_FETCH) !== 0) {
      if (userAcc ? !uaddr : uaddr && st.smep) bad = true;
      else if (st.nxe && (r & TLB_XD) !== 0) bad = true;
    } else {
      const write = (acc & ACCESS_WRITE) !== 0;
      if (userAcc) {
        if (!uaddr || (write && (r & TLB_W) === 0)) bad = true;
      } else {
        if (uaddr && st.smap && ((acc & ACCESS_IMPLICIT) !== 0 || !st.ac)) bad = true;
        else if (write && st.wp && (r & TLB_W) === 0) bad = true;
      }
      // Protection keys (SDM 4.6.2): PKRU for user-mode addresses with CR4.PKE, IA32_PKRS for
      // supervisor-mode addresses with CR4.PKS.
      if (uaddr ? st.pke : st.pks) {
        const keys = uaddr ? st.pkru : st.pkrs;
        const k = (r >>> 8) & 15;
        if ((keys >>> (2 * k)) & 1) pk = true;
        else if ((keys >>> (2 * k + 1)) & 1 && write && (userAcc || st.wp)) pk = true;
      }
    }
    if (!bad && !pk) return 0;
    return PF_P | this.accessCode(st, acc) | (pk ? PF_PK : 0);
  }

  private accessCode(st: CpuPaging, acc: number): number {
    let c = acc & (ACCESS_WRITE | ACCESS_USER);
    if ((acc & ACCESS_FETCH) !== 0 && (st.nxe || st.smep)) c |= PF_INSTR;
    return c;
  }

  private pageFault(st: CpuPaging, acc: number, bits: number): number {
    this.fault.kind = 'PF';
    this.fault.errorCode = this.accessCode(st, acc) | bits;
    return -1;
  }

  /**
   * The built-in walk on 32-bit halves of entries (same rules as `referenceWalk`). Returns the physical
   * address, or -1 with {@link fault} set. On success leaves the TLB fill data in `fill*`.
   */
  private walk(st: CpuPaging, hi: number, lo: number, acc: number): number {
    const mem = this.mem;
    const words = mem.words;
    const state = mem.state;
    const frames = mem.frames;
    const addrHi = this.addrHi;
    const pdpe1gb = this.features.pdpe1gb;
    let rsvdHi = 0xfffff & ~addrHi;
    if (!st.nxe) rsvdHi |= 0x80000000;
    let pfn = st.cr3 / 4096;
    let rights = TLB_W | TLB_U;
    let n = 0;
    let elo = 0;
    let ehi = 0;
    let level = st.la57 ? 5 : 4;
    for (; level >= 1; level--) {
      let idx: number;
      if (level === 1) idx = (lo >>> 12) & 511;
      else if (level === 2) idx = (lo >>> 21) & 511;
      else if (level === 3) idx = ((lo >>> 30) | (hi << 2)) & 511;
      else if (level === 4) idx = (hi >>> 7) & 511;
      else idx = (hi >>> 16) & 511;
      if (pfn >= frames || state[pfn] === FrameState.free) mem.checkFrame(pfn, 'page walk');
      const w = words[pfn] ?? mem.walkContents(pfn);
      if (w === undefined) return this.pageFault(st, acc, 0);
      elo = w[idx * 2];
      ehi = w[idx * 2 + 1];
      if ((elo & 1) === 0) return this.pageFault(st, acc, 0);
      // PS is reserved in a PML5E/PML4E, and in a PDPTE on a CPU without 1 GiB pages (SDM 4.1.4, 4.5).
      if ((ehi & rsvdHi) !== 0 || ((level >= 4 || (level === 3 && !pdpe1gb)) && (elo & 0x80) !== 0))
        return this.pageFault(st, acc, PF_P | PF_RSVD);
      this.usedPfn[n] = pfn;
      this.usedIdx[n] = idx;
      n++;
      if ((elo & 2) === 0) rights &= ~TLB_W;
      if ((elo & 4) === 0) rights &= ~TLB_U;
      if (ehi < 0 || ehi >= 0x80000000) rights |= TLB_XD;
      if (level === 1) break;
      if (level <= 3 && (elo & 0x80) !== 0) {
        if ((level === 3 ? elo & 0x3fffe000 : elo & 0x1fe000) !== 0)
          return this.pageFault(st, acc, PF_P | PF_RSVD);
        break;
      }
      pfn = (ehi & addrHi) * 1048576 + (elo >>> 12);
    }
    const pkey = (ehi >>> 27) & 15;
    const code = this.denied(st, acc, rights | (pkey << 8));
    if (code !== 0) {
      this.fault.kind = 'PF';
      this.fault.errorCode = code;
      return -1;
    }
    // Success: A in every entry used, D in the leaf for a write.
    for (let i = 0; i < n; i++) {
      const w = words[this.usedPfn[i]]!;
      const j = this.usedIdx[i] * 2;
      if ((w[j] & 0x20) === 0) w[j] |= 0x20;
    }
    const write = (acc & ACCESS_WRITE) !== 0;
    if (write) {
      const w = words[this.usedPfn[n - 1]]!;
      const j = this.usedIdx[n - 1] * 2;
      w[j] |= 0x40;
      elo |= 0x40;
    }
    if ((elo & 0x40) !== 0) rights |= TLB_D;
    // G counts only with CR4.PGE (SDM 4.10.2.4).
    if ((elo & 0x100) !== 0 && st.pge) rights |= TLB_G;
    rights |= TLB_VALID | (pkey << 8);
    this.fillRights = rights;
    const hiBase = (ehi & addrHi) * 4294967296;
    let pa: number;
    if (level === 1) {
      this.fillShift = 12;
      this.fillBase = hiBase + ((elo & 0xfffff000) >>> 0);
      pa = this.fillBase + (lo & 0xfff);
      this.lastPageSize = 4096;
    } else if (level === 2) {
      this.fillShift = 21;
      this.fillBase = hiBase + ((elo & 0xffe00000) >>> 0);
      pa = this.fillBase + (lo & 0x1fffff);
      this.lastPageSize = 2097152;
    } else {
      this.fillShift = 30;
      this.fillBase = hiBase + ((elo & 0xc0000000) >>> 0);
      pa = this.fillBase + (lo & 0x3fffffff);
      this.lastPageSize = 1073741824;
    }
    return pa;
  }

  private fill(st: CpuPaging, hi: number, lo: number): void {
    const tlb = st.tlb;
    const sh = this.fillShift;
    let a: TlbArray;
    let vpn: number;
    let s: number;
    if (sh === 12) {
      a = tlb.small;
      vpn = hi * 1048576 + (lo >>> 12);
      s = ((hi << 20) | (lo >>> 12)) & a.mask;
    } else if (sh === 21) {
      a = tlb.mid;
      vpn = hi * 2048 + (lo >>> 21);
      s = ((hi << 11) | (lo >>> 21)) & a.mask;
    } else {
      a = tlb.huge;
      vpn = hi * 4 + (lo >>> 30);
      s = ((hi << 2) | (lo >>> 30)) & a.mask;
    }
    a.tag[s] = vpn;
    a.pcid[s] = st.pcid;
    a.base[s] = this.fillBase;
    a.rights[s] = this.fillRights;
  }
}

/** Splits an address into unsigned 32-bit halves. */
export function split(va: VirtAddr): [number, number] {
  if (typeof va === 'number') {
    const lo = va >>> 0;
    return [(va - lo) / 4294967296, lo];
  }
  return [Number((va >> 32n) & 0xffffffffn), Number(va & 0xffffffffn)];
}
