import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FaultHandlerFactory, SpeculativeStats } from '@spf/fault-classic';
import { FaultSpecConfigError } from '@spf/fault-spec';
import type { ChromeTrace, TraceEvent } from '@spf/machine';
import {
  FAULT_HANDLERS,
  type FaultHandlerEntry,
  FaultHandlerOptionError,
  faultHandlerByName,
  faultHandlerNames,
  parseSpecOptions,
  UnknownFaultHandlerError,
} from './fault-handlers.js';
import { ReplayParseError } from './replay/errors.js';
import { formatObservation } from './replay/observation.js';
import { streamReplay } from './run-replay.js';
import { checkCowForkOptions, runCowFork } from './scenarios/cow-fork.js';
import { checkScalingOptions, runScaling } from './scenarios/scaling.js';
import type { SystemRunResult } from './system.js';

/** What the `spf` command needs from its host (so it can be tested without a process). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * Reads a file, or standard input for `-`; throws {@link InputTooLargeError} once it has seen more than
   * `maxBytes` bytes (without reading the rest).
   */
  readFile(path: string, maxBytes: number): string;
  writeFile(path: string, text: string): void;
  chromeTrace(events: readonly TraceEvent[], cpus: number): ChromeTrace;
}

/** The usage text of the `spf` command (lists the registered fault handlers). */
export const HELP = `spf — the Linux page-fault path on a simulated SMP machine

usage:
  spf replay [--no-zero-page] [--read-ahead-kb KB] [--fault-around-pages N]
             [--fault-handler NAME [--spec-option KEY=VALUE]...] [file|-]
      Run a replay script (default: standard input, at most 16 MiB) on a freshly booted simulator and
      print one observation per op as it runs, in the format the real-kernel harness prints. --no-zero-page boots a kernel
      that maps no shared zero page on read faults (like the Linux 6.18 development VM may).
      --read-ahead-kb (default 128) and --fault-around-pages (default 16) set the disk's read_ahead_kb
      and fault_around_bytes/4096 for the file ops, as the harness's --probe reports them for a host.
  spf run <scenario> [options] [--trace out.json]
      Run a named scenario and print what it measured; --trace writes a Chrome trace (open it in
      https://ui.perfetto.dev or chrome://tracing).
      scenarios:
        scaling   N threads of one process fault in their own private regions (timed policy)
                  --threads N (default 8)  --pages P per thread (default 64)  --churn (one more
                  thread loops on mmap/munmap)  --mmap-lock rwsem|range  --seed S
                  --fault-handler NAME [--spec-option KEY=VALUE]...; with a speculative handler it
                  also prints the share of faults handled without mmap_lock and the abort reasons
        cow-fork  a parent fills pages, forks, the child writes one (copy-on-write), the parent
                  writes it again (reused)  --pages P (default 4)  --fault-handler NAME
                  [--spec-option KEY=VALUE]...; with a speculative handler it also prints the share
                  of faults handled without mmap_lock and the abort reasons
  spf bench <command> [options]
      The workloads and experiments of @spf/bench (installed separately): spf bench --help.
  spf calibrate [--out profile.json]
      Measure on this host what the cost model's main latencies stand for and write a cost profile for
      spf bench run --profile (needs @spf/bench and a C compiler): spf bench --help.
  spf --help

fault handlers (--fault-handler, default classic): FAULT_HANDLER_LIST
  --spec-option KEY=VALUE passes one option to the handler's factory (repeatable): true/false and integers
  are typed, a dotted key sets a member of a nested object (checks.ptlTrylock=false); the handler refuses
  unsafe or contradictory combinations (exit 2).

exit status: 0 success; 1 the simulation failed, or a scenario's process was killed (the kernel log,
such as an OOM kill, goes to stderr) or exited non-zero; 2 bad usage (checked before anything runs), a
malformed replay script, or a script larger than 16 MiB.
`.replace('FAULT_HANDLER_LIST', faultHandlerNames().join(', '));

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The most bytes `spf replay` reads from a script: 16 MiB (about 1.6 million ops). */
export const MAX_SCRIPT_BYTES = 16 * 1024 * 1024;

/** `spf replay` writes its output in chunks of about this many characters. */
const OUTPUT_CHUNK = 65536;

/** An input file was larger than the command accepts; it was not read further. */
export class InputTooLargeError extends Error {
  override readonly name = 'InputTooLargeError';
  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {
    super(
      `${path === '-' ? 'standard input' : path} holds more than ${maxBytes} bytes, the most a replay script may hold; split the script`,
    );
  }
}

/** The largest seed the machine takes (seeds are in [0, 2^32)). */
const MAX_SEED = 0xffffffff;

function intOption(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  if (v === undefined || !/^[0-9]+$/.test(v))
    throw new UsageError(`${name} expects a whole number, got ${v ?? 'nothing'}`);
  args.splice(i, 2);
  return Number(v);
}

function stringOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} expects a value`);
  args.splice(i, 2);
  return v;
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

/** Every value of a repeatable option, removed from `args`. */
function repeatedOption(args: string[], name: string): string[] {
  const values: string[] = [];
  for (let v = stringOption(args, name); v !== undefined; v = stringOption(args, name)) values.push(v);
  return values;
}

/**
 * `--fault-handler NAME` and its `--spec-option`s: the factory to boot with, or undefined for boot()'s
 * default (classic). Checked before anything runs; a bad name or option is a usage error (exit 2).
 */
function faultHandlerOption(
  args: string[],
  handlers: readonly FaultHandlerEntry[],
): FaultHandlerFactory | undefined {
  const name = stringOption(args, '--fault-handler');
  const specOptions = repeatedOption(args, '--spec-option');
  if (name === undefined) {
    if (specOptions.length > 0) {
      throw new UsageError(
        `--spec-option needs --fault-handler: choose the handler the option is for (${faultHandlerNames(handlers).join(', ')})`,
      );
    }
    return undefined;
  }
  try {
    return faultHandlerByName(name, parseSpecOptions(specOptions), handlers);
  } catch (e) {
    if (e instanceof UnknownFaultHandlerError) {
      throw new UsageError(`--fault-handler must be one of ${e.known.join(', ')}, not ${name}`);
    }
    if (e instanceof FaultHandlerOptionError || e instanceof FaultSpecConfigError)
      throw new UsageError(e.message);
    throw e;
  }
}

/**
 * The lines `spf run scaling` prints about a speculative handler: the share of faults it finished without
 * mmap_lock and its abort reasons (most frequent first). Empty for a handler without `speculativeStats()`.
 */
export function formatSpeculativeStats(stats: SpeculativeStats | null, faults: number): string {
  if (stats === null) return '';
  const share = faults === 0 ? 0 : (100 * stats.handled) / faults;
  const aborts = Object.entries(stats.aborts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([r, n]) => `${r} ${n}`);
  return (
    `  handled speculatively: ${stats.handled} of ${faults} faults (${share.toFixed(1)}%), ${stats.attempts} attempts\n` +
    `  aborts (fell back to mmap_lock): ${aborts.length === 0 ? 'none' : aborts.join(', ')}\n`
  );
}

function noMoreArgs(args: readonly string[]): void {
  if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
}

/**
 * Checks before the run that the trace file can be written (by creating it empty), so a bad path is a usage
 * error found at once, not a failure after a long simulation.
 */
function checkTracePath(io: CliIo, path: string | undefined): void {
  if (path === undefined) return;
  try {
    io.writeFile(path, '');
  } catch (e) {
    throw new UsageError(`cannot write the trace to ${path}: ${(e as Error).message}`);
  }
}

function writeTrace(io: CliIo, path: string | undefined, run: SystemRunResult, cpus: number): void {
  if (path === undefined) return;
  io.writeFile(path, JSON.stringify(io.chromeTrace(run.trace ?? [], cpus)));
  io.stderr(`wrote a Chrome trace of ${run.trace?.length ?? 0} events to ${path}\n`);
}

/**
 * Whether every process of a scenario ended normally with exit code 0. Otherwise prints the kernel log (an
 * OOM kill, a fatal signal) and how each such process ended on stderr, and returns false.
 */
function reportAbnormalEnds(io: CliIo, scenario: string, run: SystemRunResult): boolean {
  const bad = run.processes.filter(
    (p) => p.status === null || p.status.kind !== 'exited' || p.status.code !== 0,
  );
  if (bad.length === 0) return true;
  for (const line of run.log) io.stderr(`kernel: ${line}\n`);
  for (const p of bad) {
    const how =
      p.status === null
        ? 'did not finish'
        : p.status.kind === 'killed'
          ? `was killed by ${p.status.signal.signal} (${p.status.signal.code})`
          : `exited with ${p.status.code}`;
    io.stderr(`spf run ${scenario}: process ${p.pid} (${p.name}) ${how}\n`);
  }
  return false;
}

function replay(args: string[], io: CliIo, handlers: readonly FaultHandlerEntry[]): number {
  const noZero = flag(args, '--no-zero-page');
  const readAheadKb = intOption(args, '--read-ahead-kb', 128);
  const faultAroundPages = intOption(args, '--fault-around-pages', 16);
  if (faultAroundPages < 1 || faultAroundPages > 512) {
    throw new UsageError(`--fault-around-pages must be from 1 to 512, got ${faultAroundPages}`);
  }
  if (readAheadKb > 1 << 20)
    throw new UsageError(`--read-ahead-kb must be at most ${1 << 20}, got ${readAheadKb}`);
  const faultHandler = faultHandlerOption(args, handlers);
  const file = args.shift() ?? '-';
  noMoreArgs(args);
  const name = file === '-' ? '<stdin>' : file;
  let text: string;
  try {
    text = io.readFile(file, MAX_SCRIPT_BYTES);
  } catch (e) {
    if (e instanceof InputTooLargeError) io.stderr(`spf replay: ${e.message}\n`);
    else
      io.stderr(
        `spf replay: cannot read ${file === '-' ? 'standard input' : file}: ${(e as Error).message}\n`,
      );
    return 2;
  }
  // The output goes out in chunks as the ops run; it is never held whole.
  let pending = '';
  try {
    streamReplay(
      text,
      (o) => {
        pending += `${formatObservation(o)}\n`;
        if (pending.length >= OUTPUT_CHUNK) {
          io.stdout(pending);
          pending = '';
        }
      },
      { zeroPage: !noZero, faultHandler, files: { readAheadKb, faultAroundPages } },
    );
    if (pending !== '') io.stdout(pending);
    return 0;
  } catch (e) {
    if (e instanceof ReplayParseError) {
      io.stderr(`spf replay: ${name}: ${e.message}\n`);
      return 2;
    }
    if (pending !== '') io.stdout(pending);
    throw e;
  }
}

function run(args: string[], io: CliIo, handlers: readonly FaultHandlerEntry[]): number {
  const scenario = args.shift();
  const tracePath = stringOption(args, '--trace');
  if (scenario === 'scaling') {
    const threads = intOption(args, '--threads', 8);
    const pages = intOption(args, '--pages', 64);
    const seed = intOption(args, '--seed', 0);
    if (seed > MAX_SEED) throw new UsageError(`--seed must be from 0 to ${MAX_SEED}, got ${seed}`);
    const churn = flag(args, '--churn');
    const lock = stringOption(args, '--mmap-lock') ?? 'rwsem';
    if (lock !== 'rwsem' && lock !== 'range')
      throw new UsageError(`--mmap-lock must be rwsem or range, not ${lock}`);
    const faultHandler = faultHandlerOption(args, handlers);
    noMoreArgs(args);
    checkScalingOptions(threads, pages);
    checkTracePath(io, tracePath);
    const r = runScaling({
      threads,
      pagesPerThread: pages,
      churn,
      seed,
      mmapLock: lock,
      faultHandler,
      trace: tracePath !== undefined,
    });
    io.stdout(
      `scaling: ${threads} faulting thread(s)${churn ? ' + 1 mmap/munmap thread' : ''}, ${pages} pages each, ${r.handler} handler, mmap_lock ${lock}\n` +
        `  faults: ${r.faults}\n  simulated time: ${(r.simNs / 1000).toFixed(1)} µs\n` +
        `  faults per simulated second: ${Math.round(r.faultsPerSec)}\n` +
        (churn ? `  mmap/munmap pairs meanwhile: ${r.churnOps}\n` : '') +
        formatSpeculativeStats(r.speculative, r.faults),
    );
    writeTrace(io, tracePath, r.run, threads + (churn ? 1 : 0));
    return reportAbnormalEnds(io, scenario, r.run) ? 0 : 1;
  }
  if (scenario === 'cow-fork') {
    const pages = intOption(args, '--pages', 4);
    const faultHandler = faultHandlerOption(args, handlers);
    noMoreArgs(args);
    checkCowForkOptions(pages);
    checkTracePath(io, tracePath);
    const r = runCowFork({ pages, faultHandler, trace: tracePath !== undefined });
    if (r.lines.length > 0) io.stdout(`${r.lines.join('\n')}\n`);
    if (r.speculative !== null) {
      io.stdout(`${r.handler} handler:\n${formatSpeculativeStats(r.speculative, r.faults)}`);
    }
    writeTrace(io, tracePath, r.run, 2);
    return reportAbnormalEnds(io, scenario, r.run) ? 0 : 1;
  }
  throw new UsageError(
    scenario === undefined
      ? 'spf run needs a scenario: scaling or cow-fork'
      : `unknown scenario ${scenario}; choose scaling or cow-fork`,
  );
}

/**
 * Runs the `spf` command with `argv` (without the program name) and returns the exit status. `handlers` is
 * the registry `--fault-handler` chooses from (default {@link FAULT_HANDLERS}; tests pass their own).
 */
export function runCli(
  argv: readonly string[],
  io: CliIo,
  handlers: readonly FaultHandlerEntry[] = FAULT_HANDLERS,
): number {
  const args = [...argv];
  const cmd = args.shift();
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      io.stdout(HELP);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === 'replay') return replay(args, io, handlers);
    if (cmd === 'run') return run(args, io, handlers);
    throw new UsageError(`unknown command ${cmd}`);
  } catch (e) {
    // A speculative handler refusing its options at boot (FaultSpecConfigError) is bad usage too: nothing ran.
    if (e instanceof UsageError || e instanceof RangeError || e instanceof FaultSpecConfigError) {
      io.stderr(`spf: ${e.message}\nrun spf --help for usage\n`);
      return 2;
    }
    io.stderr(`spf: the simulation failed: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** What `spf bench` is handed to: @spf/bench's CLI entry (`@spf/bench/cli`). */
export interface BenchCliModule {
  runBenchCli(
    argv: readonly string[],
    io: { stdout(text: string): void; stderr(text: string): void; readonly tty: boolean },
  ): Promise<number>;
}

/** The package that implements `spf bench`; @spf/kernel does not depend on it. */
export const BENCH_MODULE = '@spf/bench/cli';

/**
 * Loads @spf/bench's CLI by dynamic import: first as a package this module can resolve (installed beside
 * @spf/kernel), then from the current directory's project (a project that depends on @spf/bench, or the
 * @spf/bench package itself). Resolves to null when neither has it.
 */
export async function loadBenchCli(cwd: string = process.cwd()): Promise<BenchCliModule | null> {
  const spec: string = BENCH_MODULE;
  const tries: (() => Promise<unknown>)[] = [
    () => import(spec),
    () => import(pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(spec)).href),
  ];
  for (const t of tries) {
    try {
      const m = (await t()) as Partial<BenchCliModule>;
      if (typeof m.runBenchCli === 'function') return m as BenchCliModule;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (
        code !== 'ERR_MODULE_NOT_FOUND' &&
        code !== 'MODULE_NOT_FOUND' &&
        code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED'
      )
        throw e;
    }
  }
  return null;
}

/**
 * Runs the `spf` command: `spf bench ...` is forwarded to @spf/bench's CLI (loaded by `loadBench`, default
 * {@link loadBenchCli}), with a clear message and exit status 2 when @spf/bench is not installed; every
 * other command is {@link runCli}'s.
 */
export async function runCliAsync(
  argv: readonly string[],
  io: CliIo,
  opts: { readonly tty?: boolean; readonly loadBench?: () => Promise<BenchCliModule | null> } = {},
): Promise<number> {
  if (argv[0] !== 'bench' && argv[0] !== 'calibrate') return runCli(argv, io);
  const bench = await (opts.loadBench ?? loadBenchCli)();
  if (bench === null) {
    io.stderr(
      `spf ${argv[0]}: @spf/bench is not installed. Install it beside @spf/kernel (npm install @spf/bench) and run spf ${argv[0]} again, or run its own command, spf-bench.\n`,
    );
    return 2;
  }
  // `spf calibrate ...` is `spf bench calibrate ...`.
  return bench.runBenchCli(argv[0] === 'calibrate' ? argv : argv.slice(1), {
    stdout: (t) => io.stdout(t),
    stderr: (t) => io.stderr(t),
    tty: opts.tty ?? false,
  });
}
