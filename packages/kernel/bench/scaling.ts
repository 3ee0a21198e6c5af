/**
 * The scaling experiment of the README: N threads of one process each fault in their own private region
 * (64 pages, one page table each) under the timed policy, N = 1 to 64, with the classic fault handler;
 * then the same with one more thread looping on mmap/munmap, and with a range lock as the mmap lock. Prints faults per simulated second and where
 * the simulated time of a fault goes (the mmap_lock's cache line).
 *
 * Run: npx tsx bench/scaling.ts [pagesPerThread]   (from packages/kernel)
 *
 * Standard error gets the host time of each row, and of its quiet run per simulated fault (with a trace
 * recorded, as the table's RMW column needs), relative to the one-thread row.
 */
import { runScaling } from '../src/scenarios/scaling.js';

const pages = Number(process.argv[2] ?? 64);
const counts = [1, 2, 4, 8, 16, 32, 64];
const rows: string[] = [];
rows.push(
  '| threads | faults/s (simulated) | speed-up | + mmap/munmap thread: faults/s | mmap/munmap pairs | mmap_lock RMWs per fault | range-lock mmap_lock: faults/s |',
);
rows.push(
  '| ------: | -------------------: | -------: | -----------------------------: | ----------------: | -----------------------: | -----------------------------: |',
);
let base = 0;
let hostBase = 0;
for (const n of counts) {
  const t0 = performance.now();
  const tq = performance.now();
  const quiet = runScaling({ threads: n, pagesPerThread: pages, trace: true });
  const hostPerFault = ((performance.now() - tq) * 1000) / quiet.faults;
  if (n === 1) hostBase = hostPerFault;
  let rmw = 0;
  for (const e of quiet.run.trace ?? []) if (e.kind === 'rmw' && e.label?.endsWith('->mmap_lock')) rmw++;
  const churn = runScaling({ threads: n, pagesPerThread: pages, churn: true });
  const range = runScaling({ threads: n, pagesPerThread: pages, mmapLock: 'range' });
  if (n === 1) base = quiet.faultsPerSec;
  rows.push(
    `| ${n} | ${(quiet.faultsPerSec / 1e6).toFixed(2)} M | ${(quiet.faultsPerSec / base).toFixed(2)}× | ${(churn.faultsPerSec / 1e6).toFixed(2)} M | ${churn.churnOps} | ${(rmw / quiet.faults).toFixed(1)} | ${(range.faultsPerSec / 1e6).toFixed(2)} M |`,
  );
  console.error(
    `N=${n} done in ${((performance.now() - t0) / 1000).toFixed(1)} s host; quiet run ${hostPerFault.toFixed(1)} µs host per simulated fault (${(hostPerFault / hostBase).toFixed(2)}× the 1-thread row), ${quiet.run.effects} effects`,
  );
}
console.log(rows.join('\n'));
