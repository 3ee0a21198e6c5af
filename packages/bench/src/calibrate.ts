import { spawnSync } from 'node:child_process';
import { cpus as hostCpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { compileC, HostUnavailableError } from '@spf/kernel';
import {
  COST_PROFILE_FORMAT,
  type CostOverrides,
  type CostProfile,
  parseCostProfile,
} from './cost-profile.js';
import { pft } from './workloads/pft.js';

/** Calibration could not run (no C compiler, a program failed or printed something unexpected). */
export class CalibrationError extends Error {
  override readonly name = 'CalibrationError';
}

/**
 * The C programs `spf calibrate` builds and runs (packages/bench/calibrate/), and the figures each prints as
 * `<key> <ns>` lines. Each source's comment says what it measures and how.
 */
export const CALIBRATION_PROGRAMS: readonly { readonly file: string; readonly keys: readonly string[] }[] = [
  { file: 'page-ops.c', keys: ['zero_page_ns', 'copy_page_ns'] },
  { file: 'line-transfer.c', keys: ['line_transfer_ns'] },
  { file: 'syscall.c', keys: ['syscall_ns'] },
  { file: 'anon-fault.c', keys: ['anon_fault_ns'] },
];

/** Which cost-model entry each measured figure stands for (anon_fault_ns is a check, not an entry). */
export const CALIBRATED_ENTRIES: Readonly<Record<string, keyof CostOverrides>> = {
  zero_page_ns: 'zeroPage',
  copy_page_ns: 'copyPage',
  line_transfer_ns: 'lineTransfer',
  syscall_ns: 'syscall',
};

/** Where the C sources are: `calibrate/` beside `src/` and `dist/`. */
export function calibrationSourceDir(): string {
  return fileURLToPath(new URL('../calibrate/', import.meta.url));
}

/**
 * Parses what a calibration program printed: one `<key> <number>` per line, every key of `keys` exactly
 * once and nothing else. Throws {@link CalibrationError} naming the program and the line otherwise.
 */
export function parseCalibrationOutput(
  text: string,
  program: string,
  keys: readonly string[],
): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (const line of lines) {
    const m = /^([a-z_]+) (-?[0-9]+(?:\.[0-9]+)?)$/.exec(line.trim());
    if (m === null) {
      throw new CalibrationError(`${program} printed ${JSON.stringify(line)}; expected "<key> <number>"`);
    }
    if (!keys.includes(m[1])) {
      throw new CalibrationError(`${program} printed an unknown figure ${m[1]}; expected ${keys.join(', ')}`);
    }
    if (m[1] in out) throw new CalibrationError(`${program} printed ${m[1]} twice`);
    out[m[1]] = Number(m[2]);
  }
  for (const k of keys) {
    if (!(k in out))
      throw new CalibrationError(`${program} did not print ${k}; it printed ${JSON.stringify(text)}`);
  }
  return out;
}

/**
 * The model's anonymous fault end to end on one simulated CPU with `cost`: pft on 1 CPU, 256 pages, machine
 * seed 0 (no jitter), simulated ns per fault. `spf calibrate` prints it beside the host's `anon_fault_ns`.
 */
export function modelAnonFaultNs(cost: CostOverrides): number {
  const r = pft.run({ cpus: 1, handler: 'classic', seed: 0, pagesPerThread: 256, cost });
  return r.simNs / r.faults;
}

/**
 * The profile for a set of measured figures (`measured`, as {@link parseCalibrationOutput} returns them):
 * `cost` gets each {@link CALIBRATED_ENTRIES} figure rounded to 0.1 ns, leaving out a line transfer the host
 * could not measure (-1: fewer than two CPUs); `measured` keeps every figure, and `model_anon_fault_ns`, the
 * model's fault with this profile ({@link modelAnonFaultNs}). The result is checked with the loader's own
 * validation, so whatever calibrate writes, `--profile` accepts.
 */
export function profileFromMeasurements(
  measured: Readonly<Record<string, number>>,
  host: Readonly<Record<string, unknown>>,
  name: string,
  created: string,
): CostProfile {
  const cost: Record<string, number> = {};
  for (const [key, entry] of Object.entries(CALIBRATED_ENTRIES)) {
    const v = measured[key];
    if (v === undefined) throw new CalibrationError(`no ${key} was measured`);
    if (v < 0) continue;
    cost[entry] = Math.round(v * 10) / 10;
  }
  const all: Record<string, number> = { ...measured, model_anon_fault_ns: modelAnonFaultNs(cost) };
  const profile = { format: COST_PROFILE_FORMAT, name, created, host, measured: all, cost };
  return parseCostProfile(JSON.stringify(profile), 'the profile spf calibrate built');
}

/** How calibration builds and runs a program (tests replace them). */
export interface CalibrationHost {
  /** Compiles a C source file and returns the executable's path (default: @spf/kernel's `compileC`). */
  compile(source: string): string;
  /** Runs an executable and returns its standard output (throws on a non-zero exit). */
  run(exe: string): string;
}

const defaultHost: CalibrationHost = {
  compile: (source) => compileC(source, 'calibrate'),
  run(exe) {
    const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 300_000 });
    if (r.error !== undefined) throw new CalibrationError(`cannot run ${exe}: ${r.error.message}`);
    if (r.status !== 0) throw new CalibrationError(`${exe} exited with ${r.status}: ${r.stderr}`);
    return r.stdout;
  },
};

/**
 * `spf calibrate`: builds and runs every {@link CALIBRATION_PROGRAMS} program on this host, and returns the
 * cost profile ({@link profileFromMeasurements}) and the raw figures. Throws {@link CalibrationError} when no
 * C compiler can be run (the message names it and what to install) or a program fails.
 */
export function calibrate(
  opts: { readonly host?: CalibrationHost; readonly onProgress?: (line: string) => void } = {},
): CostProfile {
  const h = opts.host ?? defaultHost;
  const dir = calibrationSourceDir();
  const load0 = loadavg()[0];
  const measured: Record<string, number> = {};
  for (const p of CALIBRATION_PROGRAMS) {
    let exe: string;
    try {
      exe = h.compile(`${dir}${p.file}`);
    } catch (e) {
      if (e instanceof HostUnavailableError) {
        throw new CalibrationError(
          `spf calibrate builds small C programs at run time and needs a C compiler called cc: ${e.message}. Install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; Alpine: apk add build-base) and run spf calibrate again`,
        );
      }
      throw e;
    }
    opts.onProgress?.(`running ${p.file}`);
    Object.assign(measured, parseCalibrationOutput(h.run(exe), p.file, p.keys));
  }
  const load1 = loadavg()[0];
  const cpuList = hostCpus();
  const host = {
    cpus: cpuList.length,
    model: cpuList[0]?.model ?? 'unknown',
    kernel: release(),
    loadAverageBefore: load0,
    loadAverageAfter: load1,
    notes:
      measured.line_transfer_ns < 0
        ? 'fewer than two CPUs could be used: lineTransfer keeps the default'
        : 'single-threaded figures are CPU time, the line transfer the best of many short wall-time passes',
  };
  const created = new Date().toISOString();
  return profileFromMeasurements(
    measured,
    host,
    `calibrated ${created.slice(0, 10)} on ${cpuList[0]?.model ?? 'this host'}`,
    created,
  );
}
