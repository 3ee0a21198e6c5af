import { MachineConfigError } from './errors.js';

/**
 * Latencies of the simulated machine in nanoseconds. Each default comes from a public measurement of a
 * modern x86 server (see {@link costModelSources}); none is tuned to make any result come out a particular
 * way. All values can be overridden per machine.
 */
export type CostModel = {
  /** A load or store that hits a line the CPU already holds in a suitable state (L1 hit). */
  readonly l1Hit: number;
  /** A load that misses every cache and is served by DRAM (first touch of a line). */
  readonly dram: number;
  /** A load of a line that other cores share clean (served by the shared last-level cache). */
  readonly llcHit: number;
  /** Moving a line from another core on the same socket (modified there, or invalidating sharers). */
  readonly lineTransfer: number;
  /** The same transfer when the other core sits on the other socket. */
  readonly crossSocketTransfer: number;
  /** Extra cost of a locked read-modify-write (LOCK XADD / CMPXCHG / XCHG) over a plain store. */
  readonly atomicExtra: number;
  /** MFENCE. */
  readonly fence: number;
  /** PAUSE (one spin-wait iteration). */
  readonly pause: number;
  /** CLI or STI. */
  readonly irqToggle: number;
  /** Sender's cost of writing the APIC ICR for one IPI. */
  readonly ipiSend: number;
  /** Time from sending an IPI until the target can take it. */
  readonly ipiLatency: number;
  /** Entry and exit of an interrupt or exception handler (also the page-fault trap). */
  readonly exceptionEntryExit: number;
  /** clear_page() of one 4 KiB page. */
  readonly zeroPage: number;
  /** copy_page() of one 4 KiB page. */
  readonly copyPage: number;
  /** SYSCALL entry plus SYSRET exit, without speculative-execution mitigations. */
  readonly syscall: number;
  /** A context switch between two tasks on one CPU. */
  readonly contextSwitch: number;
  /** A 4 KiB random read from an NVMe SSD. */
  readonly diskRead: number;
  /** Period of the scheduler tick when several tasks share a CPU (HZ=1000). */
  readonly tick: number;
  /** CPUs per socket; CPUs numbered at or above it are on socket 1 (at most two sockets). */
  readonly cpusPerSocket: number;
};

/** Where each default of {@link defaultCostModel} comes from. */
export const costModelSources: Readonly<Record<keyof CostModel, string>> = {
  l1Hit:
    '4-5 cycles load-to-use at ~4 GHz: Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake server L1D latency.',
  dram: 'Idle DRAM latency of ~80-90 ns reported by Intel Memory Latency Checker on Xeon Scalable servers.',
  llcHit: 'L3 hit latency of 50-70 cycles on Skylake-SP (Optimization Reference Manual); ~20 ns.',
  lineTransfer:
    'Core-to-core cache-line transfer within a socket of ~50-70 ns on Xeon Scalable (published core-to-core latency measurements; David, Guerraoui, Trigonakis, SOSP 2013, report the same order on Intel Xeon).',
  crossSocketTransfer:
    'Cross-socket transfer of ~120-140 ns on two-socket Xeon Scalable (same measurements); about twice the in-socket cost.',
  atomicExtra:
    'LOCK-prefixed RMW latency of ~18-20 cycles versus ~1 for a store (Agner Fog, instruction tables, Skylake): ~5 ns.',
  fence: 'MFENCE ~33 cycles on Skylake (Agner Fog, instruction tables): ~8 ns.',
  pause:
    'PAUSE takes ~140 cycles on Skylake and later (Optimization Reference Manual, section on PAUSE latency): ~35 ns.',
  irqToggle: 'CLI/STI cost a few cycles (Agner Fog, instruction tables).',
  ipiSend:
    'x2APIC ICR write plus smp_call_function bookkeeping: a few hundred ns (Linux IPI benchmarks on LKML).',
  ipiLatency:
    'IPI delivery of ~1 us on bare-metal x86 servers (measurements in the literature on TLB shootdowns, e.g. Amit et al., USENIX ATC 2017).',
  exceptionEntryExit:
    'Trap entry and IRET return of a few hundred ns on modern x86 without mitigations (lmbench-style page-fault microbenchmarks).',
  zeroPage: '4 KiB at ~10 GB/s with REP STOSB (clear_page_erms): ~400 ns.',
  copyPage: '4 KiB read plus write at ~8 GB/s (copy_page with REP MOVSQ): ~500 ns.',
  syscall: 'SYSCALL+SYSRET round trip of ~70-100 ns without KPTI (published syscall microbenchmarks).',
  contextSwitch: 'lmbench lat_ctx of ~1.5 us for two processes on a modern x86 server.',
  diskRead: 'Typical 4 KiB random read latency of ~80 us for datacenter NAND NVMe SSDs (vendor datasheets).',
  tick: 'CONFIG_HZ=1000: a 1 ms scheduler tick.',
  cpusPerSocket: 'One socket unless a second is asked for.',
};

/** The default latencies; see {@link costModelSources}. */
export const defaultCostModel: CostModel = Object.freeze({
  l1Hit: 1,
  dram: 85,
  llcHit: 20,
  lineTransfer: 60,
  crossSocketTransfer: 130,
  atomicExtra: 5,
  fence: 8,
  pause: 35,
  irqToggle: 1,
  ipiSend: 300,
  ipiLatency: 1000,
  exceptionEntryExit: 250,
  zeroPage: 400,
  copyPage: 500,
  syscall: 100,
  contextSwitch: 1500,
  diskRead: 80_000,
  tick: 1_000_000,
  cpusPerSocket: 1 << 30,
});

/**
 * A cost model with defaults for everything not given. `sockets: 2` splits the CPUs evenly over two
 * sockets, so transfers between them cost {@link CostModel.crossSocketTransfer}.
 */
export function makeCostModel(cpus: number, overrides: Partial<CostModel> = {}, sockets = 1): CostModel {
  if (sockets !== 1 && sockets !== 2) {
    throw new MachineConfigError(`sockets must be 1 or 2, got ${sockets}`);
  }
  const model: CostModel = {
    ...defaultCostModel,
    ...(sockets === 2 ? { cpusPerSocket: Math.ceil(cpus / 2) } : {}),
    ...overrides,
  };
  for (const [k, v] of Object.entries(model)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new MachineConfigError(`cost model entry '${k}' must be a finite number >= 0, got ${String(v)}`);
    }
  }
  if (model.cpusPerSocket < 1) throw new MachineConfigError('cpusPerSocket must be at least 1');
  return model;
}
