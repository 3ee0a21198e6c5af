/**
 * Which costs make classic's scaling peak early? (issue 15, "a first check"). Runs pft under the classic
 * handler at 1 to 64 simulated CPUs with the default cost model, then with each cost profile given (default:
 * every profile in packages/bench/profiles/, each of which changes ONE cost), and prints for each: the speed-up
 * over its own 1-CPU rate at each CPU count, the peak, and the locked RMWs on the mmap_lock line per fault.
 * The profiles go through the same loader as `spf bench run --profile` (readCostProfile). Nothing here changes
 * the cost model the experiments use: it is a sensitivity analysis of the curve's shape. The table is
 * printed and written to results/first-check.md.
 *
 * Run (from packages/bench): npx tsx --conditions=@spf/source scripts/scaling-investigation.ts [pagesPerThread] [profile.json...]
 */
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/atomic-write.js';
import { type CostOverrides, readCostProfile } from '../src/cost-profile.js';
import { pft } from '../src/workloads/pft.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const pages = Number(process.argv[2] ?? 64);
const given = process.argv.slice(3);
const paths =
  given.length > 0
    ? given
    : readdirSync(join(pkg, 'profiles'))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(pkg, 'profiles', f));
const cpus = [1, 2, 4, 8, 16, 32, 48, 64];
const variants: { name: string; file: string; cost: CostOverrides }[] = [
  { name: 'default', file: '–', cost: {} },
  ...paths.map((p) => {
    const prof = readCostProfile(p);
    return { name: prof.name, file: relative(pkg, p), cost: prof.cost };
  }),
];

const out: string[] = [
  `pft, classic handler, ${pages} pages per thread, seed 0 (no jitter); speed-up over the same cost model's 1-CPU rate`,
  '',
  `| cost model | profile | 1-CPU ns/fault | ${cpus.map((n) => `${n}`).join(' | ')} | peak | mmap_lock RMWs/fault at ${cpus.map(String).join('/')} |`,
  `| --- | --- | ---: | ${cpus.map(() => '---:').join(' | ')} | --- | --- |`,
];
console.log(out.join('\n'));
for (const v of variants) {
  const t0 = performance.now();
  const rows = cpus.map((n) =>
    pft.run({ cpus: n, handler: 'classic', seed: 0, pagesPerThread: pages, cost: v.cost }),
  );
  const base = rows[0].score;
  const speed = rows.map((r) => r.score / base);
  let peak = 0;
  for (let i = 1; i < speed.length; i++) if (speed[i] > speed[peak]) peak = i;
  const line = `| ${v.name} | ${v.file} | ${(1e9 / base).toFixed(0)} | ${speed.map((s) => `${s.toFixed(2)}×`).join(' | ')} | ${speed[peak].toFixed(2)}× at ${cpus[peak]} | ${rows.map((r) => r.extra.mmapLockRmwsPerFault.toFixed(1)).join('/')} |`;
  out.push(line);
  console.log(line);
  console.error(`${v.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s host`);
}
const cmd = `cd packages/bench && npx tsx --conditions=@spf/source scripts/scaling-investigation.ts ${pages}${given.length > 0 ? ` ${given.join(' ')}` : ''}`;
writeFileAtomic(join(pkg, 'results', 'first-check.md'), `${out.join('\n')}\n\nRegenerate: \`${cmd}\`\n`);
