/**
 * Which costs make classic's scaling peak early? (issue 15, "a first check"). Runs pft under the classic
 * handler at 1 to 64 simulated CPUs with the default cost model, then again with ONE cost changed at a time
 * (halved or doubled), and prints for each: the speed-up over its own 1-CPU rate at each CPU count, the
 * peak, and the locked RMWs on the mmap_lock line per fault. Nothing here changes the cost model the
 * experiments use: this is a sensitivity analysis, to see which costs the shape of the curve depends on.
 *
 * Run (from packages/bench): npx tsx --conditions=@spf/source scripts/scaling-investigation.ts [pagesPerThread]
 */
import { defaultCostModel } from '@spf/machine';
import type { BaseParams } from '../src/workload.js';
import { pft } from '../src/workloads/pft.js';

const pages = Number(process.argv[2] ?? 64);
const cpus = [1, 2, 4, 8, 16, 32, 64];
const d = defaultCostModel;
const variants: { name: string; cost?: BaseParams['cost'] }[] = [
  { name: 'default' },
  { name: `lineTransfer ÷2 (${d.lineTransfer / 2} ns)`, cost: { lineTransfer: d.lineTransfer / 2 } },
  { name: `atomicExtra ×2 (${d.atomicExtra * 2} ns)`, cost: { atomicExtra: d.atomicExtra * 2 } },
  { name: `zeroPage ×2 (${d.zeroPage * 2} ns)`, cost: { zeroPage: d.zeroPage * 2 } },
  {
    name: `exceptionEntryExit ×2 (${d.exceptionEntryExit * 2} ns)`,
    cost: { exceptionEntryExit: d.exceptionEntryExit * 2 },
  },
  { name: `zeroPage ×4 (${d.zeroPage * 4} ns)`, cost: { zeroPage: d.zeroPage * 4 } },
];

console.log(
  `pft, classic handler, ${pages} pages per thread, seed 0 (no jitter); speed-up over the same cost model's 1-CPU rate\n`,
);
console.log(
  `| cost model | 1-CPU ns/fault | ${cpus.map((n) => `${n}`).join(' | ')} | peak | mmap_lock RMWs/fault at ${cpus.map(String).join('/')} |`,
);
console.log(`| --- | ---: | ${cpus.map(() => '---:').join(' | ')} | --- | --- |`);
for (const v of variants) {
  const t0 = performance.now();
  const rows = cpus.map((n) =>
    pft.run({ cpus: n, handler: 'classic', seed: 0, pagesPerThread: pages, cost: v.cost }),
  );
  const base = rows[0].score;
  const speed = rows.map((r) => r.score / base);
  let peak = 0;
  for (let i = 1; i < speed.length; i++) if (speed[i] > speed[peak]) peak = i;
  console.log(
    `| ${v.name} | ${(1e9 / base).toFixed(0)} | ${speed.map((s) => `${s.toFixed(2)}×`).join(' | ')} | ${speed[peak].toFixed(2)}× at ${cpus[peak]} | ${rows.map((r) => r.extra.mmapLockRmwsPerFault.toFixed(1)).join('/')} |`,
  );
  console.error(`${v.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s host`);
}
