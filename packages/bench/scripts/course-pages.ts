/**
 * Writes the course pages of the experiments (apps/course/src/content/docs/bench/) from the committed
 * results in results/: one page per experiment (question, setup, answer, tables, the plots inline as SVG)
 * and "The six questions, answered". Run after `pnpm run results`:
 *
 *   cd packages/bench && npx tsx --conditions=@spf/source scripts/course-pages.ts
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/atomic-write.js';
import { commandFor, readResultsFile } from '../src/bench.js';
import { experimentById } from '../src/experiments/index.js';
import { renderSvg } from '../src/plot.js';
import type { ResultsFile } from '../src/results-file.js';

const here = dirname(fileURLToPath(import.meta.url));
const results = join(here, '..', 'results');
const out = join(here, '..', '..', '..', 'apps', 'course', 'src', 'content', 'docs', 'bench');
const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

const files = new Map<string, ResultsFile>();
for (const f of readdirSync(results).filter((x) => /^E[0-9]+\.json$/.test(x))) {
  const file = readResultsFile(join(results, f));
  files.set(file.experiment, file);
}

for (const [id, file] of files) {
  const exp = experimentById(id);
  const rep = exp.report(file.records, file.profile);
  const svgs = await Promise.all(rep.plots.map((p) => renderSvg(p.spec)));
  const page = [
    '---',
    `title: ${q(`${exp.id}: ${exp.title}`)}`,
    `description: ${q(exp.question)}`,
    'status:',
    `  runs: ${q(`\`${commandFor(file)}\` regenerates these figures (@spf/bench; committed results in packages/bench/results/).`)}`,
    `  planned: ${q('the full profile (up to 256 and 1,024 simulated CPUs) committed; a calibrated cost profile (`spf calibrate`).')}`,
    '---',
    '',
    `**Question.** ${exp.question}`,
    '',
    `**Setup.** ${exp.setup(file.profile)}`,
    '',
    `Regenerate: \`${commandFor(file)}\`. Every figure is simulated time on @spf/machine's default cost model, median with min–max over ${file.profile.seeds} seeds.`,
    '',
    '## Answer',
    '',
    rep.answer,
    '',
    ...rep.tables.flatMap((t) => [`## ${t.title}`, '', t.markdown, '']),
    '## Plots',
    '',
    ...rep.plots.flatMap((p, i) => [
      `<figure aria-label=${JSON.stringify(p.title)}>`,
      svgs[i],
      `<figcaption>${p.title}</figcaption></figure>`,
      '',
    ]),
  ].join('\n');
  writeFileAtomic(join(out, `${id.toLowerCase()}.md`), page);
}

const row = (n: number, question: string, id: string | null) => {
  if (id === null)
    return `| ${n} | ${question} | not measured yet: needs @spf/file-backed's vm_file release options (experiment E2) |`;
  const file = files.get(id);
  if (!file) return `| ${n} | ${question} | no committed result for ${id} |`;
  const answer = experimentById(id).report(file.records, file.profile).answer.replace(/\|/g, '\\|');
  return `| ${n} | ${question} | [${id}](/bench/${id.toLowerCase()}/): ${answer} |`;
};
const summary = [
  '---',
  "title: 'The six questions, answered'",
  "description: Michel Lespinasse's six review questions on the speculative page fault series, and what the simulator measures for each so far.",
  'status:',
  "  runs: '`spf bench run all --quick` (@spf/bench) regenerates every answer below; questions 1 and 3 to 6 are measured.'",
  "  planned: 'question 2 (file VMAs and where vm_file is released), with @spf/file-backed.'",
  '---',
  '',
  'Each answer below is generated from the committed quick-profile figures; the experiment pages have the tables and plots. What would change an answer: a calibrated cost model (the default is the documented table of @spf/machine, never tuned to a result), the full profile at higher CPU counts, and (for question 2) the vm_file release options of file-backed memory.',
  '',
  "| # | the question, in the review's words | our answer so far |",
  '| --- | --- | --- |',
  row(
    1,
    'Could SPF eventually replace the mmap_sem retry mechanism (VM_FAULT_RETRY) instead of adding to it?',
    'E1',
  ),
  row(
    2,
    'Why only anonymous VMAs — would file-backed mappings work if the vma refcount held the file and vm_file were released in __free_vma()?',
    null,
  ),
  row(
    3,
    'SPF never allocates page tables — could it, if page tables were also freed under mm->page_table_lock and the VMA re-validated after taking it?',
    'E3',
  ),
  row(4, 'Why does SPF need ARCH_HAS_PTE_SPECIAL (the vm_start/vm_pgoff reads in vm_normal_page())?', 'E4'),
  row(
    5,
    'Does it regress single-threaded workloads (kernbench) once the "abort when the mm has one user" shortcut is removed?',
    'E5',
  ),
  row(6, 'Would an interval (range) lock for mmap_sem serve the writers and readers SPF cannot?', 'E6'),
  '',
  `Beyond the six: the headline sweep ([E7](/bench/e7/)) and the cost of one shared atomic per VMA ([E8](/bench/e8/)).`,
  '',
].join('\n');
writeFileAtomic(join(out, 'six-questions.md'), summary);
console.log(`wrote ${files.size + 1} pages to ${out}`);
