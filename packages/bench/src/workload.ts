import type { SpeculativeStats } from '@spf/fault-classic';
import { type BootConfig, boot, faultHandlerByName, type System, type SystemRunResult } from '@spf/kernel';
import type { CostModel } from '@spf/machine';
import type { MmapLockKind, VmFileRelease } from '@spf/vma';

/**
 * What every workload takes: the simulated machine (one CPU per thread or process unless the workload says
 * otherwise), the fault handler by its registry name (`classic`, `dufour`, `lespinasse`, `pervma`) with the
 * design's options, the machine seed, and the boot switches the experiments vary. Plain JSON, so a
 * configuration crosses a worker-thread boundary and lands in a result file unchanged.
 */
export interface BaseParams {
  /** Simulated CPUs: 1 to 1,024. */
  readonly cpus: number;
  /** A name of @spf/kernel's `FAULT_HANDLERS`. */
  readonly handler: string;
  /** The design's options (`--spec-option` of `spf run`). */
  readonly handlerOptions?: Readonly<Record<string, unknown>>;
  /** The machine seed (0 = no jitter; every other seed is one reproducible varied run). */
  readonly seed: number;
  readonly mmapLock?: MmapLockKind;
  readonly freePgtablesUnderPtl?: boolean;
  readonly pteSpecial?: boolean;
  /**
   * Where every mm releases a VMA's file (@spf/kernel's `BootConfig.vmFileRelease`; default: the one the
   * handler asks for in its `mmConfig`, else `removeVma`). Given, it wins over the handler's.
   */
  readonly vmFileRelease?: VmFileRelease;
  /**
   * Overrides of @spf/machine's cost model (latencies in ns). The experiments never set it (one cost model
   * for all); the scaling investigation of the README varies one cost at a time to see which matter.
   */
  readonly cost?: Readonly<Partial<Record<keyof CostModel, number>>>;
}

/** One number a workload measured, with its unit. */
export type Metrics = Readonly<Record<string, number>>;

/** What a workload run measured: its score (the figure the real program prints), and more. */
export interface WorkloadResult {
  /** The real program's figure (faults/s, records/s, iterations/s, seconds...), in `unit`. */
  readonly score: number;
  readonly unit: string;
  /** Simulated nanoseconds of the measured window. */
  readonly simNs: number;
  /** Page faults taken in the measured window (minor + major, every process). */
  readonly faults: number;
  /** The share of faults the handler finished without mmap_lock (0 for classic). */
  readonly speculativeShare: number;
  /** Speculative attempts that fell back, by reason (empty for classic). */
  readonly aborts: Readonly<Record<string, number>>;
  /** Further figures of the workload (latencies, counts). */
  readonly extra: Metrics;
}

/** A workload: a user program on @spf/kernel modelled on a real benchmark. */
export interface Workload<P extends BaseParams = BaseParams> {
  /** The name in result files and `spf bench list`. */
  readonly name: string;
  /** What real program it models and how it is invoked. */
  readonly models: string;
  /** What the model leaves out or changes, and why. */
  readonly simplifies: string;
  run(params: P): WorkloadResult;
}

/** A configuration a workload cannot run (bad thread count, size...): says what and what to do. */
export class WorkloadConfigError extends Error {
  override readonly name = 'WorkloadConfigError';
}

/** Throws {@link WorkloadConfigError} unless `v` is an integer in [lo, hi]. */
export function checkInt(what: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new WorkloadConfigError(`${what} must be an integer from ${lo} to ${hi}, got ${v}`);
  }
}

/**
 * Boots the system a workload runs on, from its {@link BaseParams} and the simulated RAM it needs (rounded
 * up to whole MiB, at least 64 MiB); `files` configures the disk file system at `/mnt` (file workloads).
 */
export function bootFor(p: BaseParams, memoryBytes: number, files?: BootConfig['files']): System {
  checkInt('cpus', p.cpus, 1, 1024);
  const mib = Math.max(64, Math.ceil(memoryBytes / 2 ** 20));
  return boot({
    cpus: p.cpus,
    seed: p.seed,
    memory: mib * 2 ** 20,
    faultHandler: faultHandlerByName(p.handler, p.handlerOptions ?? {}),
    mmapLock: p.mmapLock,
    freePgtablesUnderPtl: p.freePgtablesUnderPtl,
    pteSpecial: p.pteSpecial,
    vmFileRelease: p.vmFileRelease,
    cost: p.cost,
    maxSteps: Number.MAX_SAFE_INTEGER,
    files,
  });
}

/**
 * Runs a booted system to the end and throws if the simulation failed or a process was killed or exited
 * non-zero (a workload result from a broken run would be meaningless).
 */
export function runToEnd(system: System, workload: string): SystemRunResult {
  const run = system.run();
  if (!run.ok)
    throw new Error(`${workload}: the simulation failed: ${run.failure?.kind}: ${run.failure?.message}`);
  for (const p of run.processes) {
    if (p.status === null || p.status.kind !== 'exited' || p.status.code !== 0) {
      throw new Error(
        `${workload}: process ${p.pid} (${p.name}) ended ${JSON.stringify(p.status)}; log: ${run.log.join(' | ')}`,
      );
    }
  }
  return run;
}

/** Faults of every process of `system` (minor + major). */
export function totalFaults(system: System): number {
  let n = 0;
  for (const p of system.processes) {
    const r = p.rusage();
    n += r.minflt + r.majflt;
  }
  return n;
}

/** The handler's speculative share and aborts, from `speculativeStats()` (zero and none for classic). */
export function speculativeFigures(
  system: System,
  faults: number,
): { share: number; aborts: Record<string, number> } {
  const s: SpeculativeStats | null = system.faultHandler.speculativeStats?.() ?? null;
  if (s === null || faults === 0) return { share: 0, aborts: {} };
  const aborts: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.aborts)) if (v > 0) aborts[k] = v;
  return { share: s.handled / faults, aborts };
}

/** Builds a {@link WorkloadResult} from a finished system and the measured window. */
export function resultOf(
  system: System,
  score: number,
  unit: string,
  simNs: number,
  extra: Metrics = {},
): WorkloadResult {
  const faults = totalFaults(system);
  const spec = speculativeFigures(system, faults);
  return { score, unit, simNs, faults, speculativeShare: spec.share, aborts: spec.aborts, extra };
}
