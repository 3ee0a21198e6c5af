import type { BaseParams, WorkloadResult } from './workload.js';

/** How big a run is: the quick profile (minutes on 2 host cores) or the full one, and the sweep's knobs. */
export interface Profile {
  readonly quick: boolean;
  /** Simulated CPU counts to sweep (default: the experiment's own list for the profile). */
  readonly cpus?: readonly number[];
  /** Seeds per configuration (machine seeds 1..N); min, median and max are reported over them. */
  readonly seeds: number;
}

/** One simulation to run: a workload with its parameters, and the labels the report groups by. */
export interface RunConfig {
  /** Unique within the experiment: `<series>/<variant>/cpus=<n>/seed=<s>`. */
  readonly id: string;
  readonly workload: string;
  readonly params: BaseParams & Readonly<Record<string, unknown>>;
  /** The series (one table or plot of the experiment), e.g. `ebizzy`. */
  readonly series: string;
  /** The variant within the series (handler, option...), e.g. `dufour`. */
  readonly variant: string;
}

/** One finished configuration. */
export interface RunRecord {
  /** Position of the configuration in the experiment's full list (shards keep the original positions). */
  readonly index: number;
  readonly config: RunConfig;
  readonly result: WorkloadResult;
  /** Host milliseconds this configuration took (not part of the simulated result). */
  readonly hostMs: number;
}

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Readonly<Record<string, unknown>>;

/** What an experiment says about its records. */
export interface ExperimentReport {
  readonly tables: readonly { readonly title: string; readonly markdown: string }[];
  readonly plots: readonly { readonly name: string; readonly title: string; readonly spec: VegaLiteSpec }[];
  /** The answer in plain words, generated from the figures. */
  readonly answer: string;
}

/** One experiment: a review question, its setup, the configurations it runs and how it reports them. */
export interface Experiment {
  /** `E1`..`E8`. */
  readonly id: string;
  readonly title: string;
  /** The review's question, in its words. */
  readonly question: string;
  /** The setup in plain words (workloads, designs, sizes) for a profile. */
  setup(profile: Profile): string;
  configs(profile: Profile): RunConfig[];
  report(records: readonly RunRecord[], profile: Profile): ExperimentReport;
}

/** Statistics over seeds. */
export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
  readonly n: number;
}

/** min, median (mean of the two middle values for an even count) and max of `xs` (at least one value). */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new RangeError('spread() of no values');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  return { min: s[0], median, max: s[s.length - 1], n: s.length };
}

/** The seeds of a profile: 1..N (seed 0 is the jitter-free run; every other seed varies timing). */
export function seedsOf(profile: Profile): number[] {
  return Array.from({ length: profile.seeds }, (_, i) => i + 1);
}

/**
 * The configurations of one series: every variant at every CPU count and seed. `params(variant, cpus,
 * seed)` gives the workload parameters; a variant is a label and whatever the callback makes of it.
 */
export function sweep(
  series: string,
  workload: string,
  variants: readonly string[],
  cpus: readonly number[],
  profile: Profile,
  params: (variant: string, cpus: number, seed: number) => BaseParams & Readonly<Record<string, unknown>>,
): RunConfig[] {
  const out: RunConfig[] = [];
  for (const n of cpus) {
    for (const v of variants) {
      for (const seed of seedsOf(profile)) {
        out.push({
          id: `${series}/${v}/cpus=${n}/seed=${seed}`,
          workload,
          series,
          variant: v,
          params: params(v, n, seed),
        });
      }
    }
  }
  return out;
}

/** A point of a series: the spread over seeds of one (variant, cpus) group. */
export interface SeriesPoint {
  readonly series: string;
  readonly variant: string;
  readonly cpus: number;
  readonly value: Spread;
  /** Median share of faults handled without mmap_lock. */
  readonly speculativeShare: number;
}

/** Groups records by (series, variant, cpus) and takes the spread of `metric` over seeds. */
export function points(
  records: readonly RunRecord[],
  series: string,
  metric: (r: RunRecord) => number = (r) => r.result.score,
): SeriesPoint[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    if (r.config.series !== series) continue;
    const k = `${r.config.variant}\u0000${r.config.params.cpus}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const out: SeriesPoint[] = [];
  for (const g of groups.values()) {
    out.push({
      series,
      variant: g[0].config.variant,
      cpus: g[0].config.params.cpus,
      value: spread(g.map(metric)),
      speculativeShare: spread(g.map((r) => r.result.speculativeShare)).median,
    });
  }
  return out;
}

/** The point of `variant` at `cpus`, or undefined. */
export function pointAt(ps: readonly SeriesPoint[], variant: string, cpus: number): SeriesPoint | undefined {
  return ps.find((p) => p.variant === variant && p.cpus === cpus);
}

/** A number for a table: 3 significant digits, with k/M suffixes for large values. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)} M`;
  if (a >= 1e4) return `${(x / 1e3).toPrecision(3)} k`;
  return x.toPrecision(3);
}

/** A ratio as `1.23×`. */
export function ratio(x: number): string {
  return `${x.toFixed(2)}×`;
}

/** A Markdown table from a header and rows. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align?: readonly ('l' | 'r')[],
): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/**
 * The usual table of a sweep: one row per CPU count, one column per variant with the median and the
 * min–max over seeds, and (with `baseline`) each variant's median as a ratio to the baseline's; with
 * `share`, the speculative share too.
 */
export function sweepTable(
  ps: readonly SeriesPoint[],
  unit: string,
  baseline?: string,
  share = false,
): string {
  const variants = [...new Set(ps.map((p) => p.variant))];
  const cpus = [...new Set(ps.map((p) => p.cpus))].sort((a, b) => a - b);
  const header = ['CPUs'];
  for (const v of variants) {
    header.push(`${v}: ${unit} (min–max)`);
    if (baseline !== undefined && v !== baseline) header.push(`× ${baseline}`);
    if (share && v !== 'classic') header.push(`${v}: speculative`);
  }
  const rows = cpus.map((n) => {
    const row = [String(n)];
    const base = baseline === undefined ? undefined : pointAt(ps, baseline, n);
    for (const v of variants) {
      const p = pointAt(ps, v, n);
      row.push(p === undefined ? '–' : `${fmt(p.value.median)} (${fmt(p.value.min)}–${fmt(p.value.max)})`);
      if (baseline !== undefined && v !== baseline) {
        row.push(p && base ? ratio(p.value.median / base.value.median) : '–');
      }
      if (share && v !== 'classic') row.push(p ? `${(100 * p.speculativeShare).toFixed(0)}%` : '–');
    }
    return row;
  });
  return markdownTable(header, rows);
}

/**
 * A Vega-Lite line chart of a sweep: x = simulated CPUs (log 2 scale), y = the median, one colour per
 * variant, with a band from min to max over seeds.
 */
export function sweepPlot(
  ps: readonly SeriesPoint[],
  title: string,
  yTitle: string,
  opts: { logY?: boolean } = {},
): VegaLiteSpec {
  const values = ps.map((p) => ({
    variant: p.variant,
    cpus: p.cpus,
    median: p.value.median,
    min: p.value.min,
    max: p.value.max,
  }));
  const x = { field: 'cpus', type: 'quantitative', title: 'simulated CPUs', scale: { type: 'log', base: 2 } };
  const yScale = opts.logY ? { type: 'log' } : { zero: true };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 300,
    data: { values },
    layer: [
      {
        mark: { type: 'errorband', opacity: 0.25 },
        encoding: {
          x,
          y: { field: 'min', type: 'quantitative', title: yTitle, scale: yScale },
          y2: { field: 'max' },
          color: { field: 'variant', type: 'nominal' },
        },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'median', type: 'quantitative', title: yTitle, scale: yScale },
          color: { field: 'variant', type: 'nominal', title: 'design' },
        },
      },
    ],
  };
}

/** A bar chart of one value per variant (median, with min–max rules). */
export function barPlot(ps: readonly SeriesPoint[], title: string, yTitle: string): VegaLiteSpec {
  const values = ps.map((p) => ({
    label: `${p.variant} @${p.cpus}`,
    median: p.value.median,
    min: p.value.min,
    max: p.value.max,
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 260,
    data: { values },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x: { field: 'label', type: 'nominal', title: null, sort: null },
          y: { field: 'median', type: 'quantitative', title: yTitle },
        },
      },
      {
        mark: { type: 'rule', color: 'black' },
        encoding: {
          x: { field: 'label', type: 'nominal', sort: null },
          y: { field: 'min', type: 'quantitative' },
          y2: { field: 'max' },
        },
      },
    ],
  };
}

/** The CPU list of a profile: the user's `--cpus` if given, else the experiment's default for the profile. */
export function cpusOf(
  profile: Profile,
  quick: readonly number[],
  full: readonly number[],
): readonly number[] {
  return profile.cpus ?? (profile.quick ? quick : full);
}

/** `a / b` as a percentage change: `+12.3%`. */
export function pct(a: number, b: number): string {
  const d = (100 * (a - b)) / b;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)}%`;
}
