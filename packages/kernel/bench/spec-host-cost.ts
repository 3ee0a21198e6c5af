/**
 * Host cost of a simulated fault under each fault handler of the registry, relative to classic in the same
 * run (issue 13's target: a speculative fault costs at most 1.2× the host time of a classic fault).
 *
 * For each handler and thread count (1 and 8), the host CPU time of a scaling run (`runScaling`, timed
 * policy, one private region per thread) minus that of the same run with one page per thread, over the extra
 * faults: the marginal CPU time of one fault, without boot, mmap, thread start and the end-of-run checks.
 * Handlers alternate round by round, after a warm-up. Each round measures every handler once, back to back,
 * and gives each design's ratio to the classic measurement of the same round; the printed ratio is the
 * median of those per-round ratios. On a host shared with other jobs (and, in a VM, with other guests) the
 * load drifts from second to second by far more than the difference being measured, so a ratio of two
 * measurements taken far apart (the median of all classic rounds against the median of all rounds of a
 * design) mostly measures the drift; adjacent measurements share it. The per-fault times (median over the
 * rounds) are printed for scale. CPU time, not wall time, so that waiting for a core does not count. Pass
 * `--gc` (with node --expose-gc) for a full GC before each measurement (off by default: the next run then
 * pays for growing the young generation again, which adds noise of its own).

 * Designs appear as soon as they are registered in src/fault-handlers.ts.
 *
 * Run (from packages/kernel):
 *   node --expose-gc --conditions=@spf/source --import tsx/esm bench/spec-host-cost.ts [pagesPerThread] [rounds] [--gc]
 */
import { runScaling } from '../src/scenarios/scaling.js';
import { benchHandlers } from './bench-handlers.js';

const args = process.argv.slice(2);
const numbers = args.filter((a) => /^[0-9]+$/.test(a)).map(Number);
const pages = numbers[0] ?? 256;
const rounds = numbers[1] ?? 7;
const handlers = benchHandlers();
const TARGET = 1.2;
const gc = args.includes('--gc') ? ((globalThis as { gc?: () => void }).gc ?? (() => {})) : () => {};
const cpu = (u: NodeJS.CpuUsage) => u.user + u.system;

/**
 * Marginal simulated machine steps per fault of one configuration: deterministic (the same on every host),
 * and what the host time of the simulator grows with, so its ratio to classic says how much of a handler's
 * host cost is simulated work the design does and cannot be cut without changing what is simulated.
 */
function stepsPerFault(threads: number, factory: (typeof handlers)[number]['factory']): number {
  const big = runScaling({ threads, pagesPerThread: pages, faultHandler: factory });
  const small = runScaling({ threads, pagesPerThread: 1, faultHandler: factory });
  return (big.run.steps - small.run.steps) / (big.faults - small.faults);
}

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
  `spec-host-cost: ${pages} pages per thread, ${rounds} rounds; host CPU µs per simulated fault (median of the rounds) and the median of the per-round ratios to classic (target: at most ${TARGET}×)\n`,
);
console.log(
  '| threads | handler | µs per fault | × classic | within target | per-round ratios (min–max) | steps per fault | steps × classic |',
);
console.log('| ---: | --- | ---: | ---: | --- | --- | ---: | ---: |');
for (const threads of [1, 8]) {
  const samples = new Map<string, number[]>(handlers.map((h) => [h.name, []]));
  const ratios = new Map<string, number[]>(handlers.map((h) => [h.name, []]));
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so drift of the host does not favour one handler.
    const order = r % 2 === 0 ? handlers : [...handlers].reverse();
    const round = new Map<string, number>();
    for (const h of order) round.set(h.name, perFault(threads, h.factory));
    const base = round.get('classic') ?? Number.NaN;
    for (const h of handlers) {
      samples.get(h.name)?.push(round.get(h.name) ?? Number.NaN);
      ratios.get(h.name)?.push((round.get(h.name) ?? Number.NaN) / base);
    }
  }
  const steps = new Map(handlers.map((h) => [h.name, stepsPerFault(threads, h.factory)]));
  const baseSteps = steps.get('classic') ?? Number.NaN;
  for (const h of handlers) {
    const rs = ratios.get(h.name) ?? [];
    const st = steps.get(h.name) ?? Number.NaN;
    const ratio = median(rs);
    console.log(
      `| ${threads} | ${h.name} | ${median(samples.get(h.name) ?? []).toFixed(1)} | ${ratio.toFixed(2)}× | ${h.name === 'classic' ? '–' : ratio <= TARGET ? 'yes' : 'NO'} | ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)} | ${st.toFixed(1)} | ${(st / baseSteps).toFixed(2)}× |`,
    );
  }
}
