import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { applyCostProfile, costModelLabel, type ProfileUse } from './cost-profile.js';
import type { Experiment, Profile, RunRecord } from './experiment.js';
import { experimentById } from './experiments/index.js';
import { renderSvg } from './plot.js';
import { runPool } from './pool.js';
import {
  parseResultsFile,
  planHash,
  RESULTS_FORMAT,
  type ResultsFile,
  ResultsFileError,
  type Shard,
  shardIndices,
} from './results-file.js';

/** Options of {@link runExperiment}. */
export interface RunOptions {
  /** Worker threads (default 1: in this thread). */
  readonly jobs?: number;
  readonly shard?: Shard | null;
  /** Called after each configuration with the count done and the count to do. */
  readonly onProgress?: (done: number, total: number, rec: RunRecord) => void;
  /** A cost profile (`--profile`): its overrides apply to every configuration. Default: the default model. */
  readonly costProfile?: ProfileUse | null;
}

/** Runs an experiment's configurations (all, or one shard's) and returns the result file. */
export async function runExperiment(
  exp: Experiment,
  profile: Profile,
  opts: RunOptions = {},
): Promise<ResultsFile> {
  const configs = applyCostProfile(exp.configs(profile), opts.costProfile);
  const shard = opts.shard ?? null;
  const items = shardIndices(configs.length, shard).map((index) => ({ index, config: configs[index] }));
  let done = 0;
  const records = await runPool(items, opts.jobs ?? 1, (rec) => opts.onProgress?.(++done, items.length, rec));
  return {
    format: RESULTS_FORMAT,
    experiment: exp.id,
    profile,
    plan: planHash(configs),
    configCount: configs.length,
    shard,
    costModel: costModelLabel(opts.costProfile),
    ...(opts.costProfile ? { costProfile: opts.costProfile } : {}),
    records,
  };
}

/** The CSV of a result file: one row per configuration, extra figures as further columns. */
export function toCsv(file: ResultsFile): string {
  const extras = [...new Set(file.records.flatMap((r) => Object.keys(r.result.extra)))].sort();
  const esc = (v: unknown) => {
    const s = String(v ?? '');
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const header = [
    'index',
    'id',
    'series',
    'variant',
    'workload',
    'cpus',
    'seed',
    'handler',
    'score',
    'unit',
    'sim_ns',
    'faults',
    'speculative_share',
    ...extras,
    'host_ms',
  ];
  const rows = file.records.map((r) => [
    r.index,
    r.config.id,
    r.config.series,
    r.config.variant,
    r.config.workload,
    r.config.params.cpus,
    r.config.params.seed,
    r.config.params.handler,
    r.result.score,
    r.result.unit,
    r.result.simNs,
    r.result.faults,
    r.result.speculativeShare,
    ...extras.map((k) => r.result.extra[k]),
    r.hostMs.toFixed(0),
  ]);
  return `${[header, ...rows].map((r) => r.map(esc).join(',')).join('\n')}\n`;
}

/** The command that regenerates a result file like `file`. */
export function commandFor(file: ResultsFile): string {
  return `spf bench run ${file.experiment}${file.profile.quick ? ' --quick' : ''} --seeds ${file.profile.seeds}${file.profile.cpus ? ` --cpus ${file.profile.cpus.join(',')}` : ''}${file.costProfile ? ` --profile ${file.costProfile.path}` : ''}`;
}

/** The Markdown page of a (whole) result file, with links to its SVG plots. */
export async function renderReport(
  file: ResultsFile,
  exp: Experiment = experimentById(file.experiment),
): Promise<{ markdown: string; svgs: { name: string; svg: string }[] }> {
  const rep = exp.report(file.records, file.profile);
  const svgs: { name: string; svg: string }[] = [];
  for (const p of rep.plots) svgs.push({ name: `${exp.id}-${p.name}.svg`, svg: await renderSvg(p.spec) });
  const hostS = file.records.reduce((a, r) => a + r.hostMs, 0) / 1000;
  const md = [
    `# ${exp.id}: ${exp.title}`,
    '',
    `**Question.** ${exp.question}`,
    '',
    `**Setup.** ${exp.setup(file.profile)}`,
    '',
    `**Regenerate:** \`${commandFor(file)}\` (profile ${file.profile.quick ? 'quick' : 'full'}, ${file.configCount} configurations, cost model: ${file.costModel}; min, median and max over seeds; ${hostS.toFixed(0)} s of host time summed over configurations).`,
    '',
    '## Answer',
    '',
    rep.answer,
    '',
    ...rep.tables.flatMap((t) => [`## ${t.title}`, '', t.markdown, '']),
    '## Plots',
    '',
    ...rep.plots.map((p, i) => `![${p.title}](${svgs[i].name})`),
    '',
  ].join('\n');
  return { markdown: md, svgs };
}

/**
 * Writes a result file's outputs into `dir`: `<id>.json` (or `<id>.shard-i-of-n.json` for a shard, which
 * gets no report), and for a whole sweep `<id>.csv`, `<id>.md` and one SVG per plot. Every file is
 * written atomically (temporary file, then rename).
 */
export async function writeOutputs(file: ResultsFile, dir: string): Promise<string[]> {
  const base = file.shard
    ? `${file.experiment}.shard-${file.shard.index}-of-${file.shard.count}`
    : file.experiment;
  const written: string[] = [];
  const put = (name: string, text: string) => {
    writeFileAtomic(join(dir, name), text);
    written.push(join(dir, name));
  };
  put(`${base}.json`, `${JSON.stringify(file, null, 1)}\n`);
  if (file.shard) return written;
  put(`${base}.csv`, toCsv(file));
  const rep = await renderReport(file);
  for (const s of rep.svgs) put(s.name, s.svg);
  put(`${base}.md`, rep.markdown);
  return written;
}

/** Reads and checks a result file from disk. */
export function readResultsFile(path: string): ResultsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ResultsFileError(
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return parseResultsFile(text, path);
}

/** Regenerates every report (Markdown, CSV, SVG) of the whole result files in `dir`, and its index page. */
export async function reportDir(dir: string): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => /^E[0-9]+\.json$/.test(f))
    .sort((a, b) => Number(a.slice(1, -5)) - Number(b.slice(1, -5)));
  if (files.length === 0) throw new Error(`no result files (E<n>.json) in ${dir}; run spf bench run first`);
  const written: string[] = [];
  const index: string[] = [
    '# spf bench results',
    '',
    '| experiment | profile | answer |',
    '| --- | --- | --- |',
  ];
  for (const f of files) {
    const file = readResultsFile(join(dir, f));
    written.push(...(await writeOutputs(file, dir)));
    const exp = experimentById(file.experiment);
    const answer = exp.report(file.records, file.profile).answer.replace(/\|/g, '\\|');
    index.push(
      `| [${exp.id}: ${exp.title}](${exp.id}.md) | ${file.profile.quick ? 'quick' : 'full'}, ${file.profile.seeds} seed(s) | ${answer} |`,
    );
  }
  writeFileAtomic(join(dir, 'README.md'), `${index.join('\n')}\n`);
  written.push(join(dir, 'README.md'));
  return written;
}

/**
 * A before/after table of two result files of one experiment (a patch's cover letter): every configuration
 * present in both, with the score in each and their ratio.
 */
export function compareResults(
  a: { path: string; file: ResultsFile },
  b: { path: string; file: ResultsFile },
): string {
  if (a.file.experiment !== b.file.experiment) {
    throw new ResultsFileError(
      `${a.path} holds ${a.file.experiment} and ${b.path} holds ${b.file.experiment}; compare two runs of one experiment`,
    );
  }
  const bById = new Map(b.file.records.map((r) => [r.config.id, r]));
  const rows: string[] = [
    `| configuration | ${a.path} | ${b.path} | after / before |`,
    '| --- | ---: | ---: | ---: |',
  ];
  let common = 0;
  for (const r of a.file.records) {
    const s = bById.get(r.config.id);
    if (!s) continue;
    common++;
    rows.push(
      `| ${r.config.id} | ${r.result.score.toPrecision(4)} ${r.result.unit} | ${s.result.score.toPrecision(4)} ${s.result.unit} | ${(s.result.score / r.result.score).toFixed(3)}× |`,
    );
  }
  if (common === 0)
    throw new ResultsFileError(
      `${a.path} and ${b.path} have no configuration in common (different profiles or CPU lists?)`,
    );
  return `${rows.join('\n')}\n`;
}
