import type { MmapLockKind } from '@spf/vma';
import {
  cpusOf,
  type Experiment,
  type ExperimentReport,
  fmt,
  markdownTable,
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

/** `classic/rwsem` → handler and mmap lock. */
function paramsOf(v: string): { handler: string; mmapLock: MmapLockKind } {
  const [handler, lock] = v.split('/');
  return { handler, mmapLock: lock as MmapLockKind };
}

const LAUNCH = ['classic/rwsem', 'classic/range', 'dufour/rwsem', 'dufour/range'] as const;
const FAULT = ['classic/rwsem', 'classic/range', 'dufour/rwsem', 'dufour/range'] as const;

/** E6: question 6, a range lock as mmap_lock. */
export const e6: Experiment = {
  id: 'E6',
  title: 'Question 6: a range lock for mmap_lock',
  question: 'Would an interval (range) lock for mmap_sem serve the writers and readers SPF cannot?',
  setup(profile: Profile) {
    const launchCpus = cpusOf(profile, [4], [4, 8, 16]);
    const faultCpus = cpusOf(profile, [1, 4, 8], [1, 4, 16, 64]);
    return `Three parts, each with the rw_semaphore and with @spf/locks' range lock as every mm's mmap_lock (\`boot({ mmapLock })\`; @spf/vma takes it over the whole address space, so it excludes exactly what the rwsem excludes: partial ranges are not modelled). (1) app_launch: 100 threads created (stack mmap + guard mprotect each) while one more thread unmaps a faulted ${profile.quick ? 512 : 2048}-page region, at ${launchCpus.join(', ')} CPUs, classic and Dufour. (2) gup_reader: a reader holding mmap_lock for reading across a walk of ${profile.quick ? 200 : 1000} VMAs while a second thread creates and destroys thread stacks. (3) The range lock's cost on the fault path: pft at ${faultCpus.join(', ')} CPUs, classic and Dufour (which skips mmap_lock on most faults). ${profile.seeds} seed(s).`;
  },
  configs(profile: Profile): RunConfig[] {
    const launchCpus = cpusOf(profile, [4], [4, 8, 16]);
    const faultCpus = cpusOf(profile, [1, 4, 8], [1, 4, 16, 64]);
    return [
      ...sweep(
        'launch',
        'app_launch',
        LAUNCH,
        launchCpus.filter((n) => n >= 3),
        profile,
        (v, n, seed) => ({
          cpus: n,
          seed,
          threads: 100,
          stackPages: 16,
          touchPages: 2,
          bigMunmapPages: profile.quick ? 512 : 2048,
          ...paramsOf(v),
        }),
      ),
      ...sweep('gup', 'gup_reader', ['classic/rwsem', 'classic/range'], [2], profile, (v, n, seed) => ({
        cpus: n,
        seed,
        vmas: profile.quick ? 200 : 1000,
        nsPerVma: 50,
        walks: profile.quick ? 10 : 40,
        writerOps: profile.quick ? 20 : 80,
        ...paramsOf(v),
      })),
      ...sweep('fault', 'pft', FAULT, faultCpus, profile, (v, n, seed) => ({
        cpus: n,
        seed,
        pagesPerThread: profile.quick ? 32 : 128,
        ...paramsOf(v),
      })),
    ];
  },
  report(records: readonly RunRecord[]): ExperimentReport {
    const launch = points(records, 'launch');
    const launchMax = points(records, 'launch', (r) => r.result.extra.stackMmapMaxUs);
    const launchMean = points(records, 'launch', (r) => r.result.extra.stackMmapMeanUs);
    const gup = points(records, 'gup');
    const gupMax = points(records, 'gup', (r) => r.result.extra.writerMaxUs);
    const fault = points(records, 'fault');
    const lines: string[] = [];
    const ln = Math.max(...launch.map((p) => p.cpus));
    const lr = pointAt(launchMean, 'classic/rwsem', ln);
    const lg = pointAt(launchMean, 'classic/range', ln);
    const lrm = pointAt(launchMax, 'classic/rwsem', ln);
    const lgm = pointAt(launchMax, 'classic/range', ln);
    if (lr && lg && lrm && lgm) {
      lines.push(
        `Thread-stack mmaps during a large munmap (${ln} CPUs, classic): mean ${fmt(lr.value.median)} µs and worst ${fmt(lrm.value.median)} µs with the rwsem, ${fmt(lg.value.median)} µs and ${fmt(lgm.value.median)} µs with the whole-space range lock (${pct(lg.value.median, lr.value.median)} mean).`,
      );
    }
    const gr = pointAt(gup, 'classic/rwsem', 2);
    const gg = pointAt(gup, 'classic/range', 2);
    const grm = pointAt(gupMax, 'classic/rwsem', 2);
    if (gr && gg && grm) {
      lines.push(
        `Behind a get_user_pages-like walk, a stack mmap+munmap takes ${fmt(gr.value.median)} µs on average (worst ${fmt(grm.value.median)} µs) with the rwsem and ${fmt(gg.value.median)} µs with the range lock: the writer waits for the whole walk although it touches none of the walked VMAs.`,
      );
    }
    const fc = [...new Set(fault.map((p) => p.cpus))].sort((a, b) => a - b);
    const parts: string[] = [];
    for (const n of fc) {
      const a = pointAt(fault, 'classic/rwsem', n);
      const b = pointAt(fault, 'classic/range', n);
      const d = pointAt(fault, 'dufour/range', n);
      if (a && b && d)
        parts.push(
          `${n} CPU${n === 1 ? '' : 's'}: classic ${pct(b.value.median, a.value.median)}, Dufour on the range lock ${(d.value.median / b.value.median).toFixed(2)}× classic on it`,
        );
    }
    if (parts.length > 0)
      lines.push(
        `The range lock's cost on the fault path (pft, range lock against rwsem): ${parts.join('; ')}.`,
      );
    const close = (a?: { value: { median: number } }, b?: { value: { median: number } }) =>
      a !== undefined && b !== undefined && Math.abs(b.value.median - a.value.median) <= 0.1 * a.value.median;
    if (close(gr, gg)) {
      lines.push(
        'A range lock taken over the whole address space does not serve the writer behind the long reader: it waits as long as under the rwsem. Serving it needs each operation to lock only its own range (mmap of a fresh stack the gap it picks, munmap its range, the walker each VMA), which @spf/vma does not model.',
      );
    }
    const fault4 = fc
      .filter((n) => n > 1)
      .map((n) => [pointAt(fault, 'classic/rwsem', n), pointAt(fault, 'classic/range', n)]);
    if (fault4.some(([a, b]) => a && b && b.value.median < a.value.median)) {
      lines.push(
        "On the fault path the range lock costs classic throughput wherever faults contend (its acquisition serialises on the range lock's internal spinlock), and a speculative design that skips mmap_lock on most faults makes that cost mostly disappear: the two approaches are complementary rather than alternatives.",
      );
    }
    return {
      tables: [
        {
          title: 'app_launch: launch time (simulated ms, 100 threads, with a large munmap meanwhile)',
          markdown: sweepTable(launch, 'ms', 'classic/rwsem'),
        },
        {
          title: 'app_launch: worst stack mmap+mprotect latency (µs)',
          markdown: sweepTable(launchMax, 'µs', 'classic/rwsem'),
        },
        {
          title: 'gup_reader: writer mmap+munmap latency while a reader walks every VMA (µs)',
          markdown: markdownTable(
            ['mmap_lock', 'mean (min–max)', 'worst (median over seeds)'],
            gup.map((p) => [
              p.variant,
              `${fmt(p.value.median)} (${fmt(p.value.min)}–${fmt(p.value.max)})`,
              fmt(pointAt(gupMax, p.variant, p.cpus)?.value.median ?? Number.NaN),
            ]),
          ),
        },
        {
          title: 'pft: faults per simulated second with each mmap_lock',
          markdown: sweepTable(fault, 'faults/s', 'classic/rwsem', true),
        },
      ],
      plots: [
        {
          name: 'fault',
          title: 'pft under the rwsem and the range lock',
          spec: sweepPlot(fault, 'pft: rwsem vs range lock', 'faults / simulated s'),
        },
        {
          name: 'launch',
          title: 'app launch time',
          spec: sweepPlot(launch, 'app launch with a large munmap', 'simulated ms'),
        },
      ],
      answer: lines.join(' '),
    };
  },
};
