import {
  cpusOf,
  type Experiment,
  type ExperimentReport,
  fmt,
  pct,
  pointAt,
  points,
  type Profile,
  type RunConfig,
  type RunRecord,
  sweep,
  sweepPlot,
  sweepTable,
} from '../experiment.js';

const VARIANTS = ['dufour', 'dufour-no-refcount', 'lespinasse', 'classic'] as const;

function paramsOf(v: string): { handler: string; handlerOptions?: Record<string, unknown> } {
  if (v === 'dufour-no-refcount')
    return { handler: 'dufour', handlerOptions: { checks: { vmaRefcount: false } } };
  return { handler: v };
}

/** E8: the cost of one shared atomic per VMA. */
export const e8: Experiment = {
  id: 'E8',
  title: "The cost of one shared atomic per VMA (Dufour's refcount)",
  question:
    "What does SPF v12's VMA reference count (get_vma()/put_vma(), one atomic on the VMA's cache line per fault) cost when every thread faults in the same VMA? Lespinasse measured 62% of the speculative gain lost at 48 threads, which his mmap_seq design avoids by copying the VMA instead.",
  setup(profile: Profile) {
    const cpus = cpusOf(profile, [1, 4, 8, 16], [1, 2, 4, 8, 16, 32, 64]);
    return `pft (one VMA shared by all threads, ${profile.quick ? 32 : 128} pages per thread) at ${cpus.join(', ')} CPUs: Dufour's SPF v12, the same with \`checks.vmaRefcount: false\` (no get_vma()/put_vma(); unsafe, for measurement only), Lespinasse's (no shared atomic: the VMA is copied) and classic. ${profile.seeds} seed(s).`;
  },
  configs(profile: Profile): RunConfig[] {
    const cpus = cpusOf(profile, [1, 4, 8, 16], [1, 2, 4, 8, 16, 32, 64]);
    return sweep('pft', 'pft', VARIANTS, cpus, profile, (v, n, seed) => ({
      cpus: n,
      seed,
      pagesPerThread: profile.quick ? 32 : 128,
      ...paramsOf(v),
    }));
  },
  report(records: readonly RunRecord[]): ExperimentReport {
    const ps = points(records, 'pft');
    const lines: string[] = [];
    for (const n of [...new Set(ps.map((p) => p.cpus))].sort((a, b) => a - b)) {
      const d = pointAt(ps, 'dufour', n);
      const z = pointAt(ps, 'dufour-no-refcount', n);
      const c = pointAt(ps, 'classic', n);
      if (!d || !z || !c) continue;
      const gainWithout = z.value.median - c.value.median;
      const lost = gainWithout > 0 ? (100 * (z.value.median - d.value.median)) / gainWithout : Number.NaN;
      lines.push(
        `At ${n} CPU${n === 1 ? '' : 's'}: Dufour ${fmt(d.value.median)}, without the refcount ${fmt(z.value.median)} faults/s (${pct(d.value.median, z.value.median)})${Number.isFinite(lost) ? `, i.e. the refcount costs ${lost.toFixed(0)}% of the gain over classic` : ''}.`,
      );
    }
    lines.push('(Lespinasse measured 62% of the gain lost at 48 threads.)');
    return {
      tables: [
        {
          title: 'pft in one shared VMA: faults per simulated second',
          markdown: sweepTable(ps, 'faults/s', 'dufour', true),
        },
      ],
      plots: [
        {
          name: 'pft',
          title: 'pft: the VMA refcount',
          spec: sweepPlot(ps, "pft: Dufour's VMA refcount", 'faults / simulated s'),
        },
      ],
      answer: lines.join(' '),
    };
  },
};
