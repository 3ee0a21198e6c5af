import {
  barPlot,
  type Experiment,
  type ExperimentReport,
  fmt,
  markdownTable,
  pointAt,
  points,
  type Profile,
  type RunConfig,
  type RunRecord,
  spread,
  sweep,
} from '../experiment.js';
import { WorkloadConfigError } from '../workload.js';

/** The designs E1 runs: registry name and options. `pervma+file` is per-VMA locks with Linux 6.7's file VMAs. */
const DESIGNS: Readonly<Record<string, { handler: string; handlerOptions?: Record<string, unknown> }>> = {
  classic: { handler: 'classic' },
  dufour: { handler: 'dufour' },
  lespinasse: { handler: 'lespinasse' },
  pervma: { handler: 'pervma' },
  'pervma+file': { handler: 'pervma', handlerOptions: { fileVmas: true } },
};

/** Every design without the retry (`no-retry`: mmap_lock or the VMA lock held across the I/O) and with it. */
const VARIANTS = Object.keys(DESIGNS).flatMap((d) => [`${d}/no-retry`, `${d}/retry`]);

function paramsOf(v: string): {
  handler: string;
  handlerOptions?: Record<string, unknown>;
  dropMmapLockForIo: boolean;
} {
  const [design, mode] = v.split('/');
  return { ...DESIGNS[design], dropMmapLockForIo: mode === 'retry' };
}

/** A count averaged over runs: whole numbers as such, else one decimal. */
function count(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** The workload sizes of a profile. */
function sizes(profile: Profile): { filePages: number; rounds: number } {
  return profile.quick ? { filePages: 32, rounds: 2 } : { filePages: 128, rounds: 4 };
}

/** E1: question 1, can SPF replace the mmap_lock retry (VM_FAULT_RETRY) for faults waiting on I/O? */
export const e1: Experiment = {
  id: 'E1',
  title: 'Question 1: can SPF replace the retry mechanism?',
  question:
    'Could SPF eventually replace the mmap_sem retry mechanism (VM_FAULT_RETRY, dropping mmap_sem while waiting for I/O) instead of adding to it?',
  setup(profile: Profile) {
    const s = sizes(profile);
    return `The 2010 retry test (workload retry2010) on 2 CPUs: one thread loops on mmap/munmap of a 16-page anonymous region while the other maps a ${s.filePages}-page file (MAP_SHARED, read-only), reads every page, unmaps it and evicts it with posix_fadvise(POSIX_FADV_DONTNEED), ${s.rounds} rounds; the device has @spf/file-backed's default latency (80 µs + 1 µs per page) and read_ahead_kb 4, so every fault reads one page from disk (a major fault). Each design (classic, Dufour, Lespinasse, per-VMA locks, and per-VMA locks with Linux 6.7's file VMAs, \`fileVmas: true\`) runs without the retry (\`files.dropMmapLockForIo: false\`: the fault keeps mmap_lock, or its VMA lock, across the read) and with it (Linux). Figures: the mmap/munmap thread's latency per call, the faulting thread's faults per second, and the share of faults handled without mmap_lock (the rest fell back to the classic path, which takes mmap_lock and, with the retry, drops it for the I/O). ${profile.seeds} seed(s). --cpus does not apply (the test has two threads).`;
  },
  configs(profile: Profile): RunConfig[] {
    if (profile.cpus !== undefined && (profile.cpus.length !== 1 || profile.cpus[0] !== 2)) {
      throw new WorkloadConfigError(
        `E1 runs the 2010 retry test on exactly 2 CPUs (one per thread), got --cpus ${profile.cpus.join(',')}; leave --cpus out or pass --cpus 2`,
      );
    }
    const s = sizes(profile);
    return sweep('retry', 'retry2010', VARIANTS, [2], profile, (v, n, seed) => ({
      cpus: n,
      seed,
      filePages: s.filePages,
      rounds: s.rounds,
      mmapPages: 16,
      readAheadKb: 4,
      ...paramsOf(v),
    }));
  },
  report(records: readonly RunRecord[]): ExperimentReport {
    const mean = points(records, 'retry', (r) => r.result.extra.mmapMeanUs);
    const worst = points(records, 'retry', (r) => r.result.extra.mmapMaxUs);
    const rate = points(records, 'retry');
    const at = (ps: typeof mean, v: string) => pointAt(ps, v, 2);
    const abortsOf = (v: string): string => {
      const sum: Record<string, number> = {};
      let n = 0;
      for (const r of records) {
        if (r.config.series !== 'retry' || r.config.variant !== v) continue;
        n++;
        for (const [k, c] of Object.entries(r.result.aborts)) sum[k] = (sum[k] ?? 0) + c;
      }
      const parts = Object.entries(sum).map(([k, c]) => `${k} ${count(c / n)}`);
      return parts.length === 0 ? '–' : parts.join(', ');
    };
    const majors = (v: string) =>
      spread(
        records
          .filter((r) => r.config.series === 'retry' && r.config.variant === v)
          .map((r) => r.result.extra.majorFaults),
      ).median;
    const rows = VARIANTS.filter((v) => at(mean, v) !== undefined).map((v) => {
      const m = at(mean, v);
      const w = at(worst, v);
      const f = at(rate, v);
      const share = m?.speculativeShare ?? 0;
      return [
        v,
        m ? `${fmt(m.value.median)} (${fmt(m.value.min)}–${fmt(m.value.max)})` : '–',
        w ? `${fmt(w.value.median)} (${fmt(w.value.min)}–${fmt(w.value.max)})` : '–',
        f ? `${fmt(f.value.median)} (${fmt(f.value.min)}–${fmt(f.value.max)})` : '–',
        count(majors(v)),
        v.startsWith('classic/') ? '–' : `${(100 * share).toFixed(0)}%`,
        v.startsWith('classic/') ? '– (is the classic path)' : `${(100 * (1 - share)).toFixed(0)}%`,
        abortsOf(v),
      ];
    });
    const lines: string[] = [];
    const noRetry = at(mean, 'classic/no-retry');
    const withRetry = at(mean, 'classic/retry');
    const noRetryW = at(worst, 'classic/no-retry');
    const withRetryW = at(worst, 'classic/retry');
    if (noRetry && withRetry && noRetryW && withRetryW) {
      lines.push(
        `Under the classic handler, an mmap or munmap call takes ${fmt(noRetry.value.median)} µs on average (worst ${fmt(noRetryW.value.median)} µs) while the other thread's major faults hold mmap_lock across the disk read, and ${fmt(withRetry.value.median)} µs (worst ${fmt(withRetryW.value.median)} µs) with the retry, which drops the lock for the I/O.`,
      );
    }
    // A design "replaces" the retry if, without the retry, its mmap/munmap latency is within twice the
    // classic handler's with the retry.
    const replaces: string[] = [];
    const doesNot: string[] = [];
    for (const d of Object.keys(DESIGNS).filter((x) => x !== 'classic')) {
      const m = at(mean, `${d}/no-retry`);
      const r = at(mean, `${d}/retry`);
      if (!m || !r || !withRetry) continue;
      const reasons = (v: string) => {
        const a = abortsOf(v);
        return a === '–' ? '' : ` (${a})`;
      };
      lines.push(
        `${d}: without the retry ${fmt(m.value.median)} µs per call, and ${(100 * (1 - m.speculativeShare)).toFixed(0)}% of its faults fell back to the classic path${reasons(`${d}/no-retry`)}; with it ${fmt(r.value.median)} µs, ${(100 * (1 - r.speculativeShare)).toFixed(0)}% fell back${reasons(`${d}/retry`)}.`,
      );
      if (m.value.median <= 2 * withRetry.value.median) replaces.push(d);
      else doesNot.push(d);
    }
    if (doesNot.length > 0) {
      lines.push(
        `Without the retry, ${doesNot.join(', ')} leave${doesNot.length === 1 ? 's' : ''} the mmap/munmap thread waiting for the disk as the classic handler does: none of them waits for the disk without mmap_lock (SPF v12 and per-VMA locks as configured here take no file fault speculatively; Lespinasse's design, whose default takes file faults as the 2021 RFC did, gives up on a page that needs I/O, or earlier, for the reasons listed above), so every major fault falls back to the classic path and holds mmap_lock across the read. For ${doesNot.length === 1 ? 'this design' : 'these designs'} the retry is still needed.`,
      );
    }
    if (replaces.length > 0) {
      lines.push(
        `${replaces.join(', ')} without the retry keep${replaces.length === 1 ? 's' : ''} the mmap/munmap latency within twice the classic handler's with the retry: the fault waits for the disk holding only its VMA's lock, which mmap/munmap of other VMAs do not take. So yes for a design that handles file faults without mmap_lock: it can replace the retry for this conflict (mmap_lock writers against faults waiting on I/O), though a writer to the faulting VMA itself (munmap or mprotect of the file mapping) would still wait for the read. With the retry as Linux has it, such a design adds to the retry rather than replacing it: the fault drops its VMA lock for the I/O and redoes the fault under mmap_lock (the "fell back" share with the retry).`,
      );
    }
    if (replaces.length === 0) {
      lines.push(
        'No measured design replaces the retry: a speculative design that fell back for file faults needs it.',
      );
    }
    return {
      tables: [
        {
          title:
            'retry2010 on 2 CPUs: mmap/munmap latency, faults/s, and the share of faults handled without mmap_lock',
          markdown: markdownTable(
            [
              'design/mode',
              'mmap/munmap mean µs (min–max)',
              'worst µs (min–max)',
              'faults/s (min–max)',
              'major faults',
              'without mmap_lock',
              'fell back to classic',
              'fallback reasons (per run)',
            ],
            rows,
          ),
        },
      ],
      plots: [
        {
          name: 'latency',
          title: 'mmap/munmap latency during major faults',
          spec: barPlot(mean, 'retry2010: mean mmap/munmap latency (2 CPUs)', 'simulated µs per call'),
        },
        {
          name: 'worst',
          title: 'worst mmap/munmap latency during major faults',
          spec: barPlot(worst, 'retry2010: worst mmap/munmap latency (2 CPUs)', 'simulated µs per call'),
        },
      ],
      answer: lines.join(' '),
    };
  },
};
