import { VM_FILE_RELEASE_MODES, type VmFileRelease } from '@spf/vma';
import {
  barPlot,
  cpusOf,
  type Experiment,
  type ExperimentReport,
  fmt,
  markdownTable,
  pointAt,
  points,
  type Profile,
  type RunConfig,
  type RunRecord,
  ratio,
  type SeriesPoint,
  sweep,
  sweepPlot,
} from '../experiment.js';

/**
 * The designs E2 runs, by label: @spf/kernel's registry name and the design's options; every table, plot and
 * sentence of the report follows this list. `dufour` is SPF v12 as posted (file VMAs abort: `spf_vma_notsup`),
 * `dufour+file` the 2019 proposal of question 2 (the VMA reference holds the file); `lespinasse` is the 2022
 * series (anonymous only: `fileVmas: false`, named because @spf/fault-spec's default is the RFC's true),
 * `lespinasse+file` the April 2021 RFC (RCU-deferred fput). Each runs under every `vmFileRelease` option named
 * by the boot, which wins over the design's own request; a design that cannot speculate safely under an option
 * falls back on file VMAs (counted `spf_file_release` / `SPF_ABORT_FILE_RELEASE`).
 */
export const E2_DESIGNS: Readonly<
  Record<string, { readonly handler: string; readonly handlerOptions?: Readonly<Record<string, unknown>> }>
> = {
  classic: { handler: 'classic' },
  dufour: { handler: 'dufour' },
  'dufour+file': { handler: 'dufour', handlerOptions: { fileVmas: true } },
  lespinasse: { handler: 'lespinasse', handlerOptions: { fileVmas: false } },
  'lespinasse+file': { handler: 'lespinasse', handlerOptions: { fileVmas: true } },
  'pervma+file': { handler: 'pervma', handlerOptions: { fileVmas: true } },
};

/** The file workloads of E2: series name, workload and its own parameters. */
const WORKLOADS: readonly {
  series: string;
  workload: string;
  extra: Record<string, unknown>;
  what: string;
}[] = [
  { series: 'page_fault2', workload: 'page_fault2', extra: {}, what: 'private file, write: COW' },
  { series: 'page_fault3', workload: 'page_fault3', extra: {}, what: 'shared file, write: page_mkwrite' },
  {
    series: 'page_fault4-cached',
    workload: 'page_fault4',
    extra: { cache: 'cached' },
    what: 'private file, read, cached',
  },
  {
    series: 'page_fault4-uncached',
    workload: 'page_fault4',
    extra: { cache: 'uncached' },
    what: 'private file, read, evicted every round',
  },
];

/** `design/release` labels. */
function variants(): string[] {
  return Object.keys(E2_DESIGNS).flatMap((d) => VM_FILE_RELEASE_MODES.map((m) => `${d}/${m}`));
}

function split(v: string): { design: string; release: VmFileRelease } {
  const i = v.lastIndexOf('/');
  return { design: v.slice(0, i), release: v.slice(i + 1) as VmFileRelease };
}

function sizes(quick: boolean) {
  return quick ? { pages: 32, rounds: 2 } : { pages: 128, rounds: 4 };
}

function modesOf(profile: Profile): readonly ('threads' | 'processes')[] {
  return profile.quick ? ['threads'] : ['threads', 'processes'];
}

const QUICK_CPUS = [1, 4];
const FULL_CPUS = [1, 2, 4, 8, 16, 32];

/** The abort reasons of `variant` in `series`, summed over its records at `cpus`, per run. */
function abortsOf(records: readonly RunRecord[], series: string, variant: string, cpus: number): string {
  const sum: Record<string, number> = {};
  let n = 0;
  for (const r of records) {
    if (r.config.series !== series || r.config.variant !== variant || r.config.params.cpus !== cpus) continue;
    n++;
    for (const [k, c] of Object.entries(r.result.aborts)) sum[k] = (sum[k] ?? 0) + c;
  }
  const parts = Object.entries(sum)
    .sort((a, b) => b[1] - a[1])
    .map(([k, c]) => `${k} ${(c / n).toFixed(c % n === 0 ? 0 : 1)}`);
  return parts.length === 0 ? '–' : parts.join(', ');
}

/** The abort counters that say a design fell back because of the vm_file release option (Dufour's, Lespinasse's). */
const RELEASE_ABORTS = ['spf_file_release', 'SPF_ABORT_FILE_RELEASE'];

/** Faults per run, and of them the fallbacks for the release option, of `variant` in `series` at `cpus`. */
function releaseFallbacks(
  records: readonly RunRecord[],
  series: string,
  variant: string,
  cpus: number,
): { faults: number; release: number } {
  let faults = 0;
  let release = 0;
  for (const r of records) {
    if (r.config.series !== series || r.config.variant !== variant || r.config.params.cpus !== cpus) continue;
    faults += r.result.faults;
    for (const k of RELEASE_ABORTS) release += r.result.aborts[k] ?? 0;
  }
  return { faults, release };
}

/** The most frequent fallback reason of `variant` in `series` at `cpus`, or undefined. */
function topAbort(
  records: readonly RunRecord[],
  series: string,
  variant: string,
  cpus: number,
): string | undefined {
  const sum: Record<string, number> = {};
  for (const r of records) {
    if (r.config.series !== series || r.config.variant !== variant || r.config.params.cpus !== cpus) continue;
    for (const [k, c] of Object.entries(r.result.aborts)) sum[k] = (sum[k] ?? 0) + c;
  }
  return Object.entries(sum).sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** E2: question 2, file VMAs and where `vm_file` is released. */
export const e2: Experiment = {
  id: 'E2',
  title: 'Question 2: file-backed VMAs and where vm_file is released',
  question:
    'Why only anonymous VMAs: would file-backed mappings work if the vma refcount held the file and vm_file were released in __free_vma() instead of remove_vma()?',
  setup(profile: Profile) {
    const s = sizes(profile.quick);
    const cpus = cpusOf(profile, QUICK_CPUS, FULL_CPUS);
    const designs = Object.entries(E2_DESIGNS)
      .map(
        ([k, d]) =>
          `${k} (\`${d.handler}\`${d.handlerOptions ? ` ${JSON.stringify(d.handlerOptions)}` : ''})`,
      )
      .join(', ');
    return `will-it-scale page_fault2 (private file mapping, write faults: COW of the page-cache page), page_fault3 (shared file mapping, write faults: page_mkwrite and dirty tracking) and page_fault4 (private file mapping, read faults; cached as in will-it-scale, and uncached: the file evicted before every round so every fault waits for the device), ${modesOf(profile).join(' and ')} mode, each task with its own ${s.pages}-page file, ${s.rounds} rounds of mmap / touch every page / munmap, at ${cpus.join(', ')} simulated CPUs, ${profile.seeds} seed(s). Designs: ${designs}; each with every vm_file release option of @spf/kernel's \`vmFileRelease\` (removeVma: Linux's remove_vma(), freeVma: when the VMA's refcount drops to zero, the __free_vma() of the question; rcu: after a grace period). The umount-EBUSY window of each option under each design is @spf/kernel's measureVmFileWindow() (the measurement of \`pnpm bench:vm-file-window\`): 2 CPUs, munmap of a 16-page shared file mapping, then umount(2) until it succeeds; CPU 1 idle, or holding a VMA reference across one disk read (80 µs + 1 µs), as a speculative filemap_fault() of the 2019 proposal that went to the disk would.`;
  },
  configs(profile: Profile): RunConfig[] {
    const s = sizes(profile.quick);
    const cpus = cpusOf(profile, QUICK_CPUS, FULL_CPUS);
    const out: RunConfig[] = [];
    for (const mode of modesOf(profile)) {
      for (const w of WORKLOADS) {
        const series = mode === 'threads' ? w.series : `${w.series}-processes`;
        out.push(
          ...sweep(series, w.workload, variants(), cpus, profile, (v, n, seed) => {
            const { design, release } = split(v);
            return { cpus: n, seed, ...E2_DESIGNS[design], vmFileRelease: release, mode, ...s, ...w.extra };
          }),
        );
      }
    }
    // The window is deterministic (seed 0): one run per design, option and load.
    for (const load of ['idle', 'spec-major'] as const) {
      for (const v of variants()) {
        const { design, release } = split(v);
        out.push({
          id: `window-${load}/${v}/cpus=2/seed=0`,
          workload: 'vm_file_window',
          series: `window-${load}`,
          variant: v,
          params: { cpus: 2, seed: 0, ...E2_DESIGNS[design], vmFileRelease: release, load },
        });
      }
    }
    return out;
  },
  report(records: readonly RunRecord[], profile: Profile): ExperimentReport {
    const designs = Object.keys(E2_DESIGNS);
    const all = variants();
    const seriesList = [...new Set(records.map((r) => r.config.series))].filter(
      (s) => !s.startsWith('window-'),
    );
    const tables: { title: string; markdown: string }[] = [];
    const plots: ExperimentReport['plots'][number][] = [];
    const lines: string[] = [];
    const top = Math.max(
      ...records.filter((r) => r.config.workload !== 'vm_file_window').map((r) => r.config.params.cpus),
    );
    for (const series of seriesList) {
      const ps = points(records, series);
      const cpus = [...new Set(ps.map((p) => p.cpus))].sort((a, b) => a - b);
      const base = (n: number) => pointAt(ps, 'classic/removeVma', n);
      const rows = all
        .filter((v) => ps.some((p) => p.variant === v))
        .map((v) => {
          const row = [v];
          for (const n of cpus) {
            const p = pointAt(ps, v, n);
            const b = base(n);
            row.push(p ? `${fmt(p.value.median)} (${fmt(p.value.min)}–${fmt(p.value.max)})` : '–');
            row.push(p && b ? ratio(p.value.median / b.value.median) : '–');
          }
          const p = pointAt(ps, v, top);
          row.push(p ? `${(100 * p.speculativeShare).toFixed(0)}%` : '–');
          row.push(abortsOf(records, series, v, top));
          return row;
        });
      const w = WORKLOADS.find((x) => series.startsWith(x.series));
      tables.push({
        title: `${series} (${w?.what ?? ''}): iterations/s (min–max over seeds) and × classic/removeVma`,
        markdown: markdownTable(
          [
            'design/vm_file release',
            ...cpus.flatMap((n) => [`${n} CPU${n === 1 ? '' : 's'}`, '×']),
            `without mmap_lock @${top}`,
            `fallback reasons per run @${top}`,
          ],
          rows,
        ),
      });
      plots.push({
        name: series,
        title: `${series}: iterations/s by design (vm_file released in remove_vma)`,
        spec: sweepPlot(
          ps.filter((p) => p.variant.endsWith('/removeVma')),
          `${series} (${profile.quick ? 'quick' : 'full'} profile, vm_file released in remove_vma)`,
          'iterations/s',
        ),
      });
    }

    // Each design's own release option: the first of VM_FILE_RELEASE_MODES under which it takes (within 10%)
    // as large a share of the threads-mode file faults without mmap_lock as under its best one.
    const threadSeries = seriesList.filter((x) => !x.endsWith('-processes'));
    const shareSum = (v: string) =>
      threadSeries.reduce((a, x) => a + (pointAt(points(records, x), v, top)?.speculativeShare ?? 0), 0);
    const ownRelease = new Map<string, VmFileRelease>();
    for (const d of designs) {
      const sums = VM_FILE_RELEASE_MODES.map((m) => shareSum(`${d}/${m}`));
      const best = Math.max(...sums);
      const k = sums.findIndex((x) => x >= 0.9 * best);
      ownRelease.set(d, VM_FILE_RELEASE_MODES[k] ?? 'removeVma');
    }
    const own = (d: string) => ownRelease.get(d) ?? 'removeVma';
    // Per design, under its own release option: the gain over classic at the top CPU count.
    for (const series of threadSeries) {
      const ps = points(records, series);
      const b = pointAt(ps, 'classic/removeVma', top);
      if (!b) continue;
      const parts: string[] = [];
      for (const d of designs.filter((x) => x !== 'classic')) {
        const p = pointAt(ps, `${d}/${own(d)}`, top);
        if (!p) continue;
        parts.push(
          `${d} (${own(d)}) ${ratio(p.value.median / b.value.median)} with ${(100 * p.speculativeShare).toFixed(0)}% of faults without mmap_lock`,
        );
      }
      lines.push(`${series} at ${top} CPUs, against classic: ${parts.join('; ')}.`);
    }
    // The uncached read is bound by the device: say so when a design's window there differs by a disk read.
    {
      const simNs = points(records, 'page_fault4-uncached', (r) => r.result.simNs);
      const b = pointAt(simNs, 'classic/removeVma', top);
      const slower: string[] = [];
      for (const d of designs.filter((x) => x !== 'classic')) {
        const p = pointAt(simNs, `${d}/${own(d)}`, top);
        if (b && p && p.value.median - b.value.median > 40_000) {
          slower.push(`${d} ${fmt((p.value.median - b.value.median) / 1000)} µs`);
        }
      }
      if (b && slower.length > 0) {
        lines.push(
          `page_fault4-uncached is bound by the device: classic's ${top}-CPU run lasts ${fmt(b.value.median / 1000)} µs, a few disk reads of 80 µs each, and the designs that lose there take longer by about one more read (${slower.join(', ')}, median over seeds): a thread waits once more for the device, depending on when each round's readahead is issued and waited for, which these small files make a large share of the run; we have not traced which read it is, and do not read it as a fault-path cost.`,
        );
      }
    }
    // A design given a release option it cannot speculate safely under falls back on file VMAs: how often.
    const fallbacks: string[] = [];
    for (const d of designs.filter((x) => x !== 'classic')) {
      for (const m of VM_FILE_RELEASE_MODES) {
        let faults = 0;
        let release = 0;
        for (const x of threadSeries) {
          const f = releaseFallbacks(records, x, `${d}/${m}`, top);
          faults += f.faults;
          release += f.release;
        }
        if (release > 0 && faults > 0) fallbacks.push(`${d}/${m} ${(100 * (release / faults)).toFixed(0)}%`);
      }
    }
    if (fallbacks.length > 0) {
      lines.push(
        `A boot's vmFileRelease wins over the one a design asks for, and a design given an option it cannot speculate safely under takes no file fault speculatively (counted spf_file_release by Dufour's design, SPF_ABORT_FILE_RELEASE by Lespinasse's): share of all faults of the ${threadSeries.length} threads-mode workloads at ${top} CPUs that fell back for that reason: ${fallbacks.join(', ')}.`,
      );
    }
    // Between the release options under which a design does speculate: the throughput spread.
    const spreads: string[] = [];
    let widest = 0;
    for (const series of seriesList) {
      const ps = points(records, series);
      for (const d of designs) {
        for (const n of [...new Set(ps.map((p) => p.cpus))]) {
          const vals = VM_FILE_RELEASE_MODES.filter(
            (m) => releaseFallbacks(records, series, `${d}/${m}`, n).release === 0,
          )
            .map((m) => pointAt(ps, `${d}/${m}`, n)?.value.median)
            .filter((x): x is number => x !== undefined);
          if (vals.length < 2) continue;
          const lo = Math.min(...vals);
          const hi = Math.max(...vals);
          const rel = (hi - lo) / lo;
          if (rel > widest) widest = rel;
          if (rel > 0.05) spreads.push(`${series}/${d}@${n}: ${(100 * rel).toFixed(1)}%`);
        }
      }
    }
    lines.push(
      `Between the release options under which a design runs the same path (those without such fallbacks), where vm_file is released changes fault throughput by at most ${(100 * widest).toFixed(1)}% for any design, workload and CPU count${spreads.length > 0 ? ` (more than 5% in ${spreads.join(', ')})` : ''}: beyond deciding whether a design may speculate at all, the choice is not a throughput question.`,
    );

    // The umount-EBUSY window.
    const winRows: string[][] = [];
    const winPoints: SeriesPoint[] = [];
    for (const load of ['idle', 'spec-major']) {
      const ps = points(records, `window-${load}`);
      winPoints.push(...ps.map((p) => ({ ...p, variant: `${p.variant} (${load})` })));
      for (const v of all) {
        const p = pointAt(ps, v, 2);
        if (!p) continue;
        const tries = records.find((r) => r.config.series === `window-${load}` && r.config.variant === v)
          ?.result.extra.busyTries;
        winRows.push([v, load, fmt(p.value.median / 1000), String(tries ?? '–')]);
      }
    }
    if (winRows.length > 0) {
      tables.push({
        title: 'The umount-EBUSY window: simulated µs from munmap returning until umount(2) succeeds',
        markdown: markdownTable(
          ['design/vm_file release', 'CPU 1', 'window µs', 'umount tries that said EBUSY'],
          winRows,
        ),
      });
      plots.push({
        name: 'window',
        title: 'umount-EBUSY window after munmap',
        spec: barPlot(winPoints, 'umount EBUSY window after munmap (2 CPUs)', 'simulated ns'),
      });
      const win = (load: string, release: string) => {
        const ws = designs
          .map((d) => pointAt(points(records, `window-${load}`), `${d}/${release}`, 2)?.value.median)
          .filter((x): x is number => x !== undefined);
        return ws.length === 0 ? undefined : { lo: Math.min(...ws), hi: Math.max(...ws) };
      };
      const span = (x: { lo: number; hi: number } | undefined) =>
        x === undefined
          ? '–'
          : x.lo === x.hi
            ? `${fmt(x.lo / 1000)} µs`
            : `${fmt(x.lo / 1000)}–${fmt(x.hi / 1000)} µs`;
      lines.push(
        `The cost is the umount-EBUSY window Torvalds objected to in 2010. With vm_file released in remove_vma() (Linux) umount succeeds ${span(win('idle', 'removeVma'))} after munmap returns, and still ${span(win('spec-major', 'removeVma'))} when a speculative fault holds the VMA; released in __free_vma() it is ${span(win('idle', 'freeVma'))} when nothing holds the VMA but ${span(win('spec-major', 'freeVma'))} when a speculative fault holds it across one disk read (the window becomes as long as the slowest speculative fault in flight); after a grace period (rcu) it is ${span(win('idle', 'rcu'))} idle and ${span(win('spec-major', 'rcu'))} with the speculative fault.`,
      );
    }
    // A design takes file faults without mmap_lock if, under its own release option, it does so for most
    // faults of at least one threads-mode file workload.
    const shareOf = (x: string, d: string) =>
      pointAt(points(records, x), `${d}/${own(d)}`, top)?.speculativeShare ?? 0;
    const fileDesigns = designs.filter(
      (d) => d !== 'classic' && threadSeries.some((x) => shareOf(x, d) > 0.5),
    );
    const notFile = designs.filter((d) => d !== 'classic' && !fileDesigns.includes(d));
    if (notFile.length > 0) {
      lines.push(
        `${notFile.join(' and ')} handle${notFile.length === 1 ? 's' : ''} no file fault speculatively in these runs (anonymous VMAs only, as posted), so ${notFile.length === 1 ? 'it runs' : 'they run'} these workloads on the classic path and ${notFile.length === 1 ? 'its' : 'their'} release option only moves the window.`,
      );
    }
    if (fileDesigns.length > 0) {
      const per = fileDesigns.map((d) => {
        const most = threadSeries.filter((x) => shareOf(x, d) > 0.5);
        const few = threadSeries
          .filter((x) => shareOf(x, d) <= 0.5)
          .map((x) => {
            const why = topAbort(records, x, `${d}/${own(d)}`, top);
            return `${x} ${(100 * shareOf(x, d)).toFixed(0)}%${why ? ` (mostly ${why})` : ''}`;
          });
        const idle = pointAt(points(records, 'window-idle'), `${d}/${own(d)}`, 2)?.value.median;
        return `${d}, vm_file released in ${own(d)}, takes most faults of ${most.map((x) => `${x} (${(100 * shareOf(x, d)).toFixed(0)}%)`).join(', ')} without it${few.length > 0 ? ` but falls back on ${few.join(', ')}` : ''}${idle !== undefined ? `; its idle umount window is ${fmt(idle / 1000)} µs` : ''}`;
      });
      lines.push(
        `So yes, file-backed mappings work without mmap_lock: ${per.join('; ')}. The SPF designs never sleep speculatively (no I/O, no ->page_mkwrite: a page-cache miss, a locked or not-uptodate page, or a shared write falls back), so in these runs no speculative fault holds a VMA across a disk read and the spec-major window above is the bound a design that did so would pay, not what they pay. Linux 6.7's per-VMA locks do it while keeping vm_file's release in remove_vma(), because the fault holds the VMA lock, which munmap must take before removing the VMA; a refcount-based design (SPF v12's get_vma()) needs the later release (__free_vma(), or after a grace period as the 2021 RFC does), and pays for it with an umount-EBUSY window as long as its slowest in-flight speculative fault.`,
      );
    } else {
      lines.push(
        'No measured design handles file faults without mmap_lock, so this run cannot show what file VMAs gain.',
      );
    }
    return { tables, plots, answer: lines.join(' ') };
  },
};
