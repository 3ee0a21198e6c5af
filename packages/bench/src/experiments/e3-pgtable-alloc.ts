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

const SPARSE_VARIANTS = ['classic', 'dufour', 'dufour+alloc', 'lespinasse', 'lespinasse+alloc'] as const;

function handlerOf(v: string): { handler: string; handlerOptions?: Record<string, unknown> } {
  const [handler, alloc] = v.split('+');
  return alloc === 'alloc' ? { handler, handlerOptions: { specPgtableAlloc: true } } : { handler };
}

/** E3: question 3, speculative page-table allocation. */
export const e3: Experiment = {
  id: 'E3',
  title: 'Question 3: speculative page-table allocation',
  question:
    'SPF never allocates page tables: could it, if page tables were also freed under mm->page_table_lock and the VMA re-validated after taking it?',
  setup(profile: Profile) {
    const cpus = cpusOf(profile, [1, 2, 4, 8], [1, 2, 4, 8, 16, 32, 64]);
    return `A sparse first-touch workload (sparse_touch: every thread writes one page in each 2 MiB slot of its share of one large mapping, ${profile.quick ? 8 : 32} slots per thread, so every fault needs a new PTE table) at ${cpus.join(', ')} CPUs under classic, Dufour and Lespinasse without and with \`specPgtableAlloc\`, every system booted with \`freePgtablesUnderPtl: true\` (the option requires it). Then the price of that rule on a munmap-heavy workload: will-it-scale page_fault1 (threads; every round unmaps its mapping and frees its page tables) under classic with page tables freed as in Linux and under page_table_lock. ${profile.seeds} seed(s).`;
  },
  configs(profile: Profile): RunConfig[] {
    const cpus = cpusOf(profile, [1, 2, 4, 8], [1, 2, 4, 8, 16, 32, 64]);
    const slots = profile.quick ? 8 : 32;
    const munmapCpus = cpusOf(profile, [1, 4], [1, 4, 16]);
    return [
      ...sweep('sparse', 'sparse_touch', SPARSE_VARIANTS, cpus, profile, (v, n, seed) => ({
        cpus: n,
        seed,
        slotsPerThread: slots,
        freePgtablesUnderPtl: true,
        ...handlerOf(v),
      })),
      ...sweep('munmap', 'page_fault1', ['linux', 'under-ptl'], munmapCpus, profile, (v, n, seed) => ({
        cpus: n,
        seed,
        handler: 'classic',
        mode: 'threads',
        pages: profile.quick ? 32 : 64,
        rounds: profile.quick ? 2 : 4,
        freePgtablesUnderPtl: v === 'under-ptl',
      })),
    ];
  },
  report(records: readonly RunRecord[]): ExperimentReport {
    const sp = points(records, 'sparse');
    const mu = points(records, 'munmap');
    const top = Math.max(...sp.map((p) => p.cpus));
    const lines: string[] = [];
    for (const d of ['dufour', 'lespinasse']) {
      const without = pointAt(sp, d, top);
      const withAlloc = pointAt(sp, `${d}+alloc`, top);
      const classic = pointAt(sp, 'classic', top);
      if (without && withAlloc && classic) {
        lines.push(
          `At ${top} CPUs on the sparse workload, ${d} handles ${(100 * without.speculativeShare).toFixed(0)}% of faults speculatively without page-table allocation and ${(100 * withAlloc.speculativeShare).toFixed(0)}% with it; throughput ${fmt(without.value.median)} → ${fmt(withAlloc.value.median)} faults/s (${pct(withAlloc.value.median, without.value.median)}; classic ${fmt(classic.value.median)}).`,
        );
      }
    }
    const muTop = Math.max(...mu.map((p) => p.cpus));
    for (const n of [...new Set(mu.map((p) => p.cpus))].sort((a, b) => a - b)) {
      const a = pointAt(mu, 'linux', n);
      const b = pointAt(mu, 'under-ptl', n);
      if (a && b) {
        lines.push(
          `Freeing page tables under page_table_lock changes page_fault1 at ${n} CPU${n === 1 ? '' : 's'} by ${pct(b.value.median, a.value.median)} (${fmt(a.value.median)} → ${fmt(b.value.median)} faults/s)${n === muTop ? '.' : ';'}`,
        );
      }
    }
    const slower = ['dufour', 'lespinasse'].filter((d) => {
      const a = pointAt(sp, d, top);
      const b = pointAt(sp, `${d}+alloc`, top);
      return a !== undefined && b !== undefined && b.value.median < a.value.median;
    });
    const grew = ['dufour', 'lespinasse'].some((d) => {
      const a = pointAt(sp, d, top);
      const b = pointAt(sp, `${d}+alloc`, top);
      return a !== undefined && b !== undefined && b.speculativeShare > a.speculativeShare + 0.5;
    });
    if (grew) {
      lines.push(
        'So it can: with page tables freed under page_table_lock (the rule Lespinasse asked for), a speculative fault allocates the missing tables after re-validating under that lock, and the faults that needed a table stop falling back to mmap_lock.',
      );
    }
    if (slower.length > 0) {
      lines.push(
        `It is not free: throughput fell for ${slower.join(' and ')} at ${top} CPUs. In this model the speculative allocation runs with mm->page_table_lock held, allocation included (@spf/vma's pgtableAllocUnderPtl(), a documented simplification), so every faulting CPU that needs a table serialises on that one lock, where the classic path allocates outside any lock and takes only the split PMD lock to install the table.`,
      );
    }
    return {
      tables: [
        {
          title: 'sparse_touch: faults per simulated second (share handled speculatively)',
          markdown: sweepTable(sp, 'faults/s', 'classic', true),
        },
        {
          title: 'page_fault1 (threads, classic): page tables freed as in Linux vs under page_table_lock',
          markdown: sweepTable(mu, 'faults/s', 'linux'),
        },
      ],
      plots: [
        {
          name: 'sparse',
          title: 'sparse first touch',
          spec: sweepPlot(sp, 'sparse first touch (one fault per 2 MiB)', 'faults / simulated s'),
        },
        {
          name: 'munmap',
          title: 'page_fault1, tables freed under page_table_lock',
          spec: sweepPlot(mu, 'page_fault1: free_pgtables under page_table_lock', 'faults / simulated s'),
        },
      ],
      answer: lines.join(' '),
    };
  },
};
