/**
 * Host cost of a simulated fault under each fault handler of the registry, relative to classic in the same
 * run (issue 13's target: a speculative fault costs at most 1.2× the host time of a classic fault).
 *
 * For each handler and thread count (1 and 8), the host CPU time of a scaling run (`runScaling`, timed
 * policy, one private region per thread) minus that of the same run with one page per thread, over the extra
 * faults: the marginal CPU time of one fault, without boot, mmap, thread start and the end-of-run checks.
 * Handlers alternate round by round, after a warm-up, and the median of the rounds is printed (CPU time,
 * not wall time, so that other jobs on a shared host disturb it less; run with node --expose-gc for a GC
 * before each measurement).
 *
 * Designs appear as soon as they are registered in src/fault-handlers.ts.
 *
 * Run (from packages/kernel):
 *   node --expose-gc --conditions=@spf/source --import tsx/esm bench/spec-host-cost.ts [pagesPerThread] [rounds]
 */
import { runScaling } from '../src/scenarios/scaling.js';
import { benchHandlers } from './bench-handlers.js';

const args = process.argv.slice(2);
const numbers = args.filter((a) => /^[0-9]+$/.test(a)).map(Number);
const pages = numbers[0] ?? 256;
const rounds = numbers[1] ?? 7;
const handlers = benchHandlers();
const TARGET = 1.2;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const cpu = (u: NodeJS.CpuUsage) => u.user + u.system;

/** Marginal host CPU µs per simulated fault of one configuration. */
function perFault(threads: number, factory: (typeof handlers)[number]['factory']): number {
  gc();
  const c0 = process.cpuUsage();
  const big = runScaling({ threads, pagesPerThread: pages, faultHandler: factory });
  const c1 = process.cpuUsage(c0);
  gc();
  const c2 = process.cpuUsage();
  const small = runScaling({ threads, pagesPerThread: 1, faultHandler: factory });
  const c3 = process.cpuUsage(c2);
  return (cpu(c1) - cpu(c3)) / (big.faults - small.faults);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

for (let k = 0; k < 2; k++) for (const h of handlers) for (const t of [1, 8]) perFault(t, h.factory);

console.log(
  `spec-host-cost: ${pages} pages per thread, median of ${rounds} rounds; host CPU µs per simulated fault (target: at most ${TARGET}× classic)\n`,
);
console.log('| threads | handler | µs per fault | × classic | within target |');
console.log('| ---: | --- | ---: | ---: | --- |');
for (const threads of [1, 8]) {
  const samples = new Map<string, number[]>(handlers.map((h) => [h.name, []]));
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so drift of the host does not favour one handler.
    const order = r % 2 === 0 ? handlers : [...handlers].reverse();
    for (const h of order) samples.get(h.name)?.push(perFault(threads, h.factory));
  }
  const base = median(samples.get('classic') ?? [Number.NaN]);
  for (const h of handlers) {
    const m = median(samples.get(h.name) ?? []);
    const ratio = m / base;
    console.log(
      `| ${threads} | ${h.name} | ${m.toFixed(1)} | ${ratio.toFixed(2)}× | ${h.name === 'classic' ? '–' : ratio <= TARGET ? 'yes' : 'NO'} |`,
    );
  }
}
