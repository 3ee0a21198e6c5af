import { availableParallelism } from 'node:os';
import { writeFileAtomic } from './atomic-write.js';
import { compareResults, readResultsFile, reportDir, runExperiment, writeOutputs } from './bench.js';
import { CALIBRATED_ENTRIES, CalibrationError, calibrate } from './calibrate.js';
import { CostProfileError, type ProfileUse, readCostProfile } from './cost-profile.js';
import type { Experiment, Profile } from './experiment.js';
import { EXPERIMENTS, experimentById, UnknownExperimentError } from './experiments/index.js';
import { defaultCostModel } from '@spf/machine';
import { mergeResults, parseShard, ResultsFileError, type Shard } from './results-file.js';
import { WorkloadConfigError } from './workload.js';
import { WORKLOADS } from './workloads/index.js';

/** What `spf bench` needs from its host (tests pass their own). */
export interface BenchIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Standard error is a terminal: draw a live progress bar instead of plain lines. */
  readonly tty: boolean;
}

/** The usage text of `spf bench`. */
export const BENCH_HELP = `spf bench — the workloads and experiments of @spf/bench

usage:
  spf bench list
      The experiments (with their questions) and the workloads.
  spf bench run <experiment|all> [--quick] [--cpus 1,2,4] [--seeds N] [--jobs N] [--shard i/n] [--out DIR]
                [--profile FILE]
      Run an experiment's sweep (E1..E8, or all of them) and write DIR/<id>.json, .csv, .md and .svg
      (default DIR: spf-bench-results). --quick: the small profile (minutes on two cores). --cpus: the
      simulated CPU counts to sweep (1 to 1024). --seeds: seeds per configuration (default 3); min, median
      and max are reported. --jobs: worker threads (default: every host core); the results do not depend
      on it. --shard i/n: run only shard i (0-based) of n and write DIR/<id>.shard-i-of-n.json.
      --profile FILE: run with a cost profile (from spf calibrate, or hand-written) instead of the default
      cost model; the pages say which.
  spf bench calibrate [--out FILE]          (also: spf calibrate)
      Build small C programs with cc and measure on this host what the cost model's main latencies stand
      for (clearing and copying a 4 KiB page, a cache-line transfer between two cores, a system call, an
      anonymous fault end to end); write the cost profile (default FILE: spf-cost-profile.json).
  spf bench merge <shard.json>... [--out DIR]
      Join the shards of one run (all of them, each once) and write the whole result and its report.
  spf bench report [--out DIR]
      Regenerate every Markdown page, CSV and SVG plot from the result files in DIR, and DIR/README.md.
  spf bench compare <before.json> <after.json>
      A before/after table of two runs of one experiment (Markdown, for a patch's cover letter).

exit status: 0 success; 1 a simulation failed; 2 bad usage or a malformed result file.
`;

class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new BenchUsageError(`${name} expects a value`);
  args.splice(i, 2);
  return v;
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function positiveInt(name: string, v: string | undefined, fallback: number, most: number): number {
  if (v === undefined) return fallback;
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > most) {
    throw new BenchUsageError(`${name} expects a whole number from 1 to ${most}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** Parses `--cpus 1,2,4`: integers from 1 to 1,024, each once. */
export function parseCpus(text: string): number[] {
  const parts = text.split(',');
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]+$/.test(p.trim()))
      throw new BenchUsageError(
        `--cpus expects a comma-separated list of whole numbers (for example 1,2,4), got ${JSON.stringify(text)}`,
      );
    const n = Number(p.trim());
    if (n < 1 || n > 1024)
      throw new BenchUsageError(
        `--cpus: ${n} is outside 1..1024 (the simulated machine has 1 to 1,024 CPUs)`,
      );
    if (out.includes(n)) throw new BenchUsageError(`--cpus: ${n} is given twice`);
    out.push(n);
  }
  return out.sort((a, b) => a - b);
}

function noExtra(args: string[]): void {
  if (args.length > 0) throw new BenchUsageError(`unexpected argument(s): ${args.join(' ')}`);
}

function fmtS(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

/** A progress reporter: a bar redrawn in place on a TTY, plain lines otherwise. */
function progress(io: BenchIo, label: string): (done: number, total: number) => void {
  const t0 = performance.now();
  let lastLine = -1;
  return (done, total) => {
    const el = (performance.now() - t0) / 1000;
    const left = done > 0 ? (el / done) * (total - done) : 0;
    if (io.tty) {
      const w = 30;
      const fill = Math.round((w * done) / total);
      io.stderr(
        `\r${label} [${'#'.repeat(fill)}${'-'.repeat(w - fill)}] ${done}/${total} configurations, ${fmtS(el)} elapsed, ~${fmtS(left)} left `,
      );
      if (done === total) io.stderr('\n');
    } else {
      const tenth = Math.floor((10 * done) / total);
      if (tenth !== lastLine || done === total) {
        lastLine = tenth;
        io.stderr(
          `${label}: ${done}/${total} configurations done, ${el.toFixed(0)} s elapsed, ~${left.toFixed(0)} s left\n`,
        );
      }
    }
  };
}

async function run(args: string[], io: BenchIo): Promise<number> {
  const which = args.shift();
  if (which === undefined || which.startsWith('--'))
    throw new BenchUsageError('spf bench run needs an experiment (E1..E8) or all');
  const quick = flag(args, '--quick');
  const cpusText = take(args, '--cpus');
  const cpus = cpusText === undefined ? undefined : parseCpus(cpusText);
  const seeds = positiveInt('--seeds', take(args, '--seeds'), 3, 100);
  const jobs = positiveInt('--jobs', take(args, '--jobs'), availableParallelism(), 256);
  const shardText = take(args, '--shard');
  let shard: Shard | null = null;
  try {
    shard = shardText === undefined ? null : parseShard(shardText);
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
  const out = take(args, '--out') ?? 'spf-bench-results';
  const profilePath = take(args, '--profile');
  noExtra(args);
  let costProfile: ProfileUse | null = null;
  if (profilePath !== undefined) {
    const p = readCostProfile(profilePath);
    costProfile = { name: p.name, path: profilePath, cost: p.cost };
    io.stdout(`cost model: profile ${JSON.stringify(p.name)} (${profilePath}): ${JSON.stringify(p.cost)}\n`);
  }
  const exps: Experiment[] = which === 'all' ? [...EXPERIMENTS] : [experimentById(which)];
  const profile: Profile = cpus === undefined ? { quick, seeds } : { quick, seeds, cpus };
  const t0 = performance.now();
  for (const exp of exps) {
    const e0 = performance.now();
    const file = await runExperiment(exp, profile, {
      jobs,
      shard,
      costProfile,
      onProgress: progress(io, exp.id),
    });
    const written = await writeOutputs(file, out);
    io.stdout(
      `${exp.id}: ${file.records.length} configurations in ${((performance.now() - e0) / 1000).toFixed(1)} s (${jobs} job${jobs === 1 ? '' : 's'}); wrote ${written.join(', ')}\n`,
    );
    if (!shard) {
      const rep = exp.report(file.records, profile);
      io.stdout(`${exp.id} answer: ${rep.answer}\n`);
    }
  }
  if (exps.length > 1) io.stdout(`all: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}

async function merge(args: string[], io: BenchIo): Promise<number> {
  const out = take(args, '--out') ?? 'spf-bench-results';
  if (args.length === 0) throw new BenchUsageError('spf bench merge needs the shard files to join');
  const files = args.map((path) => ({ path, file: readResultsFile(path) }));
  const whole = mergeResults(files);
  const written = await writeOutputs(whole, out);
  io.stdout(
    `${whole.experiment}: merged ${files.length} shard(s), ${whole.records.length} configurations; wrote ${written.join(', ')}\n`,
  );
  return 0;
}

function calibrateCmd(args: string[], io: BenchIo): number {
  const out = take(args, '--out') ?? 'spf-cost-profile.json';
  noExtra(args);
  const profile = calibrate({ onProgress: (l) => io.stderr(`spf calibrate: ${l}\n`) });
  writeFileAtomic(out, `${JSON.stringify(profile, null, 2)}\n`);
  const m = profile.measured ?? {};
  const rows = Object.entries(CALIBRATED_ENTRIES).map(([k, entry]) => {
    const v = profile.cost[entry];
    return `| ${entry} | ${defaultCostModel[entry]} | ${v === undefined ? `not measured (${m[k]})` : v} |`;
  });
  io.stdout(
    [
      `wrote ${out} (${profile.name})`,
      '',
      '| cost-model entry | default ns | this host ns |',
      '| --- | ---: | ---: |',
      ...rows,
      '',
      `anonymous fault end to end: this host ${m.anon_fault_ns?.toFixed(0)} ns (CPU time), the model with this profile ${m.model_anon_fault_ns?.toFixed(0)} ns (1 simulated CPU); the difference is what the model leaves out (memcg, LRU, the page allocator, a VM's exits)`,
      `load average ${String((profile.host as { loadAverageBefore?: number } | undefined)?.loadAverageBefore)} before, ${String((profile.host as { loadAverageAfter?: number } | undefined)?.loadAverageAfter)} after: a loaded host inflates every figure; calibrate on a quiet machine`,
      `use it: spf bench run <experiment> --profile ${out}`,
      '',
    ].join('\n'),
  );
  return 0;
}

function list(io: BenchIo): number {
  const lines = ['experiments (spf bench run <id> [--quick]):'];
  for (const e of EXPERIMENTS) lines.push(`  ${e.id}  ${e.title}\n      ${e.question}`);
  lines.push('', 'workloads:');
  for (const w of WORKLOADS) lines.push(`  ${w.name.padEnd(13)} ${w.models}`);
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}

/**
 * Runs `spf bench` with `argv` (the arguments after `bench`) and resolves to the exit status. Usage errors,
 * unknown experiments and malformed result files print a message naming the problem and give 2; a failed
 * simulation gives 1.
 */
export async function runBenchCli(argv: readonly string[], io: BenchIo): Promise<number> {
  const args = [...argv];
  const cmd = args.shift();
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      io.stdout(BENCH_HELP);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === 'list') {
      noExtra(args);
      return list(io);
    }
    if (cmd === 'run') return await run(args, io);
    if (cmd === 'merge') return await merge(args, io);
    if (cmd === 'calibrate') return calibrateCmd(args, io);
    if (cmd === 'report') {
      const out = take(args, '--out') ?? 'spf-bench-results';
      noExtra(args);
      const written = await reportDir(out);
      io.stdout(`wrote ${written.join(', ')}\n`);
      return 0;
    }
    if (cmd === 'compare') {
      if (args.length !== 2)
        throw new BenchUsageError(
          'spf bench compare needs exactly two result files: <before.json> <after.json>',
        );
      const [a, b] = args.map((path) => ({ path, file: readResultsFile(path) }));
      io.stdout(compareResults(a, b));
      return 0;
    }
    throw new BenchUsageError(
      `unknown bench command ${cmd}; choose list, run, merge, report, compare or calibrate`,
    );
  } catch (e) {
    if (e instanceof CalibrationError) {
      io.stderr(`spf calibrate: ${e.message}\n`);
      return 1;
    }
    if (
      e instanceof BenchUsageError ||
      e instanceof UnknownExperimentError ||
      e instanceof ResultsFileError ||
      e instanceof WorkloadConfigError ||
      e instanceof CostProfileError
    ) {
      io.stderr(`spf bench: ${e.message}\nrun spf bench --help for usage\n`);
      return 2;
    }
    io.stderr(`spf bench: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
