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

const VARIANTS = [
  'dufour',
  'dufour-no-pte-special',
  'lespinasse',
  'lespinasse-no-pte-special',
  'pervma',
  'pervma-no-pte-special',
] as const;

function paramsOf(v: string): {
  handler: string;
  handlerOptions?: Record<string, unknown>;
  pteSpecial: boolean;
} {
  const noSpecial = v.endsWith('-no-pte-special');
  const handler = v.replace('-no-pte-special', '');
  return {
    handler,
    pteSpecial: !noSpecial,
    ...(noSpecial && handler === 'dufour' ? { handlerOptions: { unsafeWithoutPteSpecial: true } } : {}),
  };
}

/** E4: question 4, pte_special. */
export const e4: Experiment = {
  id: 'E4',
  title: 'Question 4: why SPF needs ARCH_HAS_PTE_SPECIAL',
  question: 'Why does SPF need ARCH_HAS_PTE_SPECIAL (the vm_start/vm_pgoff reads in vm_normal_page())?',
  setup(profile: Profile) {
    const cpus = cpusOf(profile, [1, 4], [1, 4, 16]);
    return `pft (${profile.quick ? 32 : 128} pages per thread) at ${cpus.join(', ')} CPUs under each speculative design, with and without pte_special (\`boot({ pteSpecial: false })\`; Dufour's design also needs \`unsafeWithoutPteSpecial: true\` to accept it). ${profile.seeds} seed(s). The safety half of the question is an explored test, not a measurement: @spf/kernel's src/fault-spec/dufour-q4.test.ts.`;
  },
  configs(profile: Profile): RunConfig[] {
    const cpus = cpusOf(profile, [1, 4], [1, 4, 16]);
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
    const cpus = [...new Set(ps.map((p) => p.cpus))].sort((a, b) => a - b);
    for (const d of ['dufour', 'lespinasse', 'pervma']) {
      const parts: string[] = [];
      for (const n of cpus) {
        const a = pointAt(ps, d, n);
        const b = pointAt(ps, `${d}-no-pte-special`, n);
        if (a && b)
          parts.push(
            `${pct(b.value.median, a.value.median)} at ${n} CPU${n === 1 ? '' : 's'} (${fmt(a.value.median)} → ${fmt(b.value.median)})`,
          );
      }
      if (parts.length > 0)
        lines.push(`Without pte_special, ${d}'s pft throughput changes by ${parts.join(', ')}.`);
    }
    const same =
      lines.length > 0 &&
      ps.every((p) => {
        if (p.variant.endsWith('-no-pte-special')) return true;
        const b = pointAt(ps, `${p.variant}-no-pte-special`, p.cpus);
        return b !== undefined && b.value.median === p.value.median;
      });
    lines.push(
      same
        ? 'The fault path costs exactly the same either way: vm_normal_page() (vmNormalPage() in @spf/vma, which has no memory effects of its own) reads vm_start/vm_pgoff only for VM_PFNMAP/VM_MIXEDMAP mappings, and pft has none. The requirement is about safety, not speed: without pte_special, a speculative fault on such a mapping would read vm_start/vm_pgoff of a VMA that may change under it (SPF holds no lock on it; Lespinasse reads a stable copy, per-VMA locks hold the VMA).'
        : 'The differences above are the whole fault-path cost of going without pte_special on anonymous memory. The requirement is about safety: without pte_special, a speculative fault on a VM_PFNMAP/VM_MIXEDMAP mapping would read vm_start/vm_pgoff of a VMA that may change under it.',
      "The explorer's finding (@spf/fault-spec README, Question 4): on this substrate the speculative path reaches vm_normal_page() only for anonymous VMAs and only under the PTE lock after vma_has_changed(), so no wrong-page or use-after-free report was found with unsafeWithoutPteSpecial; the hazard needs PFN-mapped VMAs, which SPF v12 never handles speculatively.",
    );
    return {
      tables: [
        {
          title: 'pft: faults per simulated second, with and without pte_special',
          markdown: sweepTable(ps, 'faults/s'),
        },
      ],
      plots: [
        {
          name: 'pft',
          title: 'pft with and without pte_special',
          spec: sweepPlot(ps, 'pft: pte_special on/off', 'faults / simulated s'),
        },
      ],
      answer: lines.join(' '),
    };
  },
};
