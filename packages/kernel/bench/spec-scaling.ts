/**
 * The scaling experiment of issue 13 for every fault handler of the registry: N threads of one process (one
 * per CPU) each write once to every page of their own private region under the timed policy, N = 1 to 256,
 * without and with one more thread looping on mmap/munmap (`runScaling`'s `churn`). For each handler and N
 * it prints faults per simulated second, the ratio to classic at the same N, the share of faults the handler
 * finished without mmap_lock and its abort reasons (`FaultHandler.speculativeStats()`).
 *
 * Designs appear as soon as they are registered in src/fault-handlers.ts.
 *
 * Run (from packages/kernel): npx tsx --conditions=@spf/source bench/spec-scaling.ts [pagesPerThread] [--max-threads N]
 *
 * The rate is over the window from the first faulting thread's start to the last one's end
 * (`faultsPerSecFromFirstStart`): thread creation is serial, so the README experiment's window (from the
 * moment every thread has started) lets the first threads fault before it opens and overstates at high N.
 */
import type { SpeculativeStats } from '@spf/fault-classic';
import { runScaling } from '../src/scenarios/scaling.js';
import { benchHandlers } from './bench-handlers.js';

const args = process.argv.slice(2);
const maxAt = args.indexOf('--max-threads');
const maxThreads = maxAt >= 0 ? Number(args[maxAt + 1]) : 256;
const pages = Number(args.find((a, i) => /^[0-9]+$/.test(a) && args[i - 1] !== '--max-threads') ?? 16);
const handlers = benchHandlers();
const counts = [1, 2, 4, 8, 16, 32, 64, 128, 256].filter((n) => n <= maxThreads);

function share(s: SpeculativeStats | null, faults: number): string {
  return s === null ? '–' : `${((100 * s.handled) / faults).toFixed(1)}%`;
}
function aborts(s: SpeculativeStats | null): string {
  if (s === null) return '–';
  const r = Object.entries(s.aborts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`);
  return r.length === 0 ? 'none' : r.join(', ');
}

console.log(
  `spec-scaling: ${pages} pages per thread, handlers ${handlers.map((h) => h.name).join(', ')}; faults/s simulated\n`,
);
console.log(
  '| threads | handler | faults/s | × classic | speculative | aborts | + mmap/munmap: faults/s | × classic | speculative | aborts | mmap/munmap pairs |',
);
console.log('| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |');
for (const n of counts) {
  let base = { quiet: 0, churn: 0 };
  for (const h of handlers) {
    const t0 = performance.now();
    const quiet = runScaling({ threads: n, pagesPerThread: pages, faultHandler: h.factory });
    const churn = runScaling({ threads: n, pagesPerThread: pages, churn: true, faultHandler: h.factory });
    const q = quiet.faultsPerSecFromFirstStart;
    const c = churn.faultsPerSecFromFirstStart;
    if (h.name === 'classic') base = { quiet: q, churn: c };
    console.log(
      `| ${n} | ${h.name} | ${(q / 1e6).toFixed(2)} M | ${(q / base.quiet).toFixed(2)}× | ${share(quiet.speculative, quiet.faults)} | ${aborts(quiet.speculative)} | ${(c / 1e6).toFixed(2)} M | ${(c / base.churn).toFixed(2)}× | ${share(churn.speculative, churn.faults)} | ${aborts(churn.speculative)} | ${churn.churnOps} |`,
    );
    console.error(`N=${n} ${h.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s host`);
  }
}
