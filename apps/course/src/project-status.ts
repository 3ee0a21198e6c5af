import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One package of the design (docs/ARCHITECTURE.md), and what it would let a reader run. */
export type DesignPackage = {
  readonly name: string;
  /** What it brings, in a few words, for "planned, not built yet: …". */
  readonly brings: string;
};

/** Every package the design names, in dependency order. */
export const DESIGN_PACKAGES: readonly DesignPackage[] = [
  { name: 'machine', brings: 'the simulated SMP machine' },
  { name: 'pagetable', brings: 'x86-64 page tables, the MMU walk and TLBs' },
  { name: 'locks', brings: 'spinlocks, rwsem, seqcount, RCU, range lock, lockdep' },
  { name: 'vma', brings: 'address spaces and the mapping syscalls' },
  { name: 'fault-classic', brings: 'the classic fault path under mmap_lock' },
  {
    name: 'fault-spec',
    brings: "the speculative designs: Dufour's SPF, Lespinasse's mmap_seq, per-VMA locks",
  },
  {
    name: 'file-backed',
    brings: 'file-backed faults: page cache, a block device, filemap_fault, fault-around',
  },
  { name: 'kernel', brings: 'a whole simulated system and the spf command' },
  { name: 'bench', brings: 'the benchmarks (will-it-scale, ebizzy, pft, kernbench) and their figures' },
  { name: 'labs', brings: 'the graded labs' },
];

/**
 * The repository's packages/ directory: found from the working directory upwards (the site is built and
 * tested from apps/course, and the bundled build no longer sits next to this file's source).
 */
function packagesDir(): string {
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return join(dir, 'packages');
    if (dirname(dir) === dir)
      throw new Error(`no pnpm-workspace.yaml above ${process.cwd()}: run from the spf repository`);
  }
}

/** Whether a package of the design exists in this repository (so its pages may show it running). */
export function isBuilt(name: string): boolean {
  return existsSync(join(packagesDir(), name, 'package.json'));
}

/** The design's packages that do not exist yet. */
export function plannedPackages(): DesignPackage[] {
  return DESIGN_PACKAGES.filter((p) => !isBuilt(p.name));
}
