import { runSync } from '@spf/machine';
import type { CpuFeatures } from '../cpu-features.js';
import { kernelWalk } from '../kernel-walk.js';
import { type CpuPaging, Mmu } from '../mmu.js';
import { PageTables } from '../page-tables.js';
import { PhysicalMemory } from '../physical-memory.js';
import { referenceWalk } from '../reference-walk.js';
import type { WalkAccess, WalkResult } from '../walker.js';

/** A small machine for paging tests: 64 MiB of RAM, one address space loaded on CPU 0. */
export type World = { mem: PhysicalMemory; pt: PageTables; mmu: Mmu; cpu: CpuPaging };

export type WorldOptions = {
  la57?: boolean;
  maxPhyAddr?: number;
  size?: number;
  cpus?: number;
  cpuFeatures?: Partial<CpuFeatures>;
};

export function makeWorld(opts: WorldOptions = {}): World {
  const mem = new PhysicalMemory({ size: opts.size ?? 64 * 1024 * 1024, maxPhyAddr: opts.maxPhyAddr });
  const pt = new PageTables(mem, { la57: opts.la57 });
  const mmu = new Mmu(mem, { cpus: opts.cpus ?? 1, cpuFeatures: opts.cpuFeatures });
  mmu.switchMm(0, pt);
  return { mem, pt, mmu, cpu: mmu.cpu(0) };
}

/** The three walks that must agree: the MMU's fast walk, `referenceWalk`, and the kernel-form walk. */
export const WALKS = ['fast', 'reference', 'kernel'] as const;
export type WalkKind = (typeof WALKS)[number];

export function runWalk(kind: WalkKind, w: World, va: bigint | number, access: WalkAccess): WalkResult {
  if (kind === 'fast') return w.mmu.translate(0, va, access);
  if (kind === 'reference') return referenceWalk(w.mmu.memoryView, w.cpu.regs(), BigInt(va), access);
  return runSync(kernelWalk(w.mem, w.cpu.regs(), BigInt(va), access)).result;
}

export const R: WalkAccess = { kind: 'read', user: false };
export const W: WalkAccess = { kind: 'write', user: false };
export const X: WalkAccess = { kind: 'fetch', user: false };
export const UR: WalkAccess = { kind: 'read', user: true };
export const UW: WalkAccess = { kind: 'write', user: true };
export const UX: WalkAccess = { kind: 'fetch', user: true };
export const IMPLICIT_R: WalkAccess = { kind: 'read', user: false, implicit: true };
