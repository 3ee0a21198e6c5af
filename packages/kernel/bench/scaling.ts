/**
 * The scaling experiment of the README: N threads of one process each fault in their own private region
 * (64 pages, one page table each) under the timed policy, N = 1 to 64, with the classic fault handler;
 * then the same with one more thread looping on mmap/munmap, and with a range lock as the mmap lock. Prints faults per simulated second and where
 * the simulated time of a fault goes (the mmap_lock's cache line).
 *
 * Run: npx tsx bench/scaling.ts [pagesPerThread]   (from packages/kernel; for the host figures on stderr,
 *      node --expose-gc --conditions=@spf/source --import tsx/esm bench/scaling.ts 256 runs the sources;
 *      --expose-gc is for the memory figures)
 *
 * Standard error gets each row's host time, and its host CPU time per simulated fault (the mean over the row's
 * three runs of the marginal CPU time per fault, see `timedRun`; the RMW column counts the locked RMWs on the
 * mmap_lock's line without a trace) relative to the one-thread row, with the machine effects and the skipped pure spin-wait
 * iterations per fault of each run. At 1 and 64 threads it also prints the host bytes per resident simulated
 * page (heap and array buffers after a GC, with every page faulted in, minus the same before the first fault,
 * in one more quiet run, not timed): at 64 threads in this scenario (16,384 pages with the default 256 per
 * thread); at 1 thread in bench/fault-run.ts's single-threaded run of 16,384 pages; each the median of three runs, because the host heap moves
 * by up to a megabyte or so between two full GCs on its own (V8's code and feedback, the loader), which is more
 * than the one-thread row's 256 to 512 pages occupy; printed negative figures came from that. At the end: the
 * whole run's host CPU time and peak resident memory.
 * The timed runs are not preceded by a forced GC: with one before each, the one-thread row (a run of 256
 * faults) read about eight times higher (570 to 930 instead of 44 to 100 µs per fault in one session), which
 * understated every ratio to it.
 */
import { runScaling } from '../src/scenarios/scaling.js';
import { faultRun } from './fault-run.js';

const pages = Number(process.argv[2] ?? 64);
const counts = [1, 2, 4, 8, 16, 32, 64];
const rows: string[] = [];
rows.push(
  '| threads | faults/s (simulated) | speed-up | + mmap/munmap thread: faults/s | mmap/munmap pairs | mmap_lock RMWs per fault | range-lock mmap_lock: faults/s |',
);
rows.push(
  '| ------: | -------------------: | -------: | -----------------------------: | ----------------: | -----------------------: | -----------------------------: |',
);
// Warm-up: the first runs load modules and compile the fault path, which would be charged to the
// one-thread row.
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
for (let k = 0; k < 3; k++) {
  for (const n of [1, 4]) {
    runScaling({ threads: n, pagesPerThread: 64 });
    runScaling({ threads: n, pagesPerThread: 64, churn: true });
    runScaling({ threads: n, pagesPerThread: 64, mmapLock: 'range' });
  }
}
/** Host bytes in use (heap and array buffers) after a full GC. */
const usedBytes = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const cpu = (u: NodeJS.CpuUsage) => u.user + u.system;
let base = 0;
let hostBase = 0;
for (const n of counts) {
  const t0 = performance.now();
  const host: number[] = [];
  // Host time per simulated fault: the CPU time this process spends on the row's configuration minus that
  // of the same configuration with one page per thread, over the extra faults, so that fixed costs (boot,
  // mmap, thread start, the end-of-run checks) do not count. CPU time, not wall time, so that other jobs on
  // a shared host change the figure less. The CPU time of the memory probes (their GCs) does not count.
  const timedRun = (o: Parameters<typeof runScaling>[0]) => {
    const c0 = process.cpuUsage();
    const r = runScaling(o);
    const c1 = process.cpuUsage(c0);
    const c2 = process.cpuUsage();
    const small = runScaling({ ...o, pagesPerThread: 1 });
    const c3 = process.cpuUsage(c2);
    host.push((cpu(c1) - cpu(c3)) / (r.faults - small.faults));
    effects.push(r.run.effects / r.faults);
    skipped.push(r.run.spinsSkipped / r.faults);
    return r;
  };
  const skipped: number[] = [];
  const effects: number[] = [];
  // Host bytes per resident simulated page, at 1 and 64 threads: in use with every page faulted in, minus in
  // use before the first fault.
  const quiet = timedRun({ threads: n, pagesPerThread: pages });
  // Three probe runs, the median: one of them now and then reads a few hundred bytes per page off.
  const perPage: number[] = [];
  for (let k = 0; n === 64 && k < 3; k++) {
    let before = 0;
    let after = 0;
    runScaling({
      threads: n,
      pagesPerThread: pages,
      probe: (phase) => {
        if (phase === 'mapped') before = usedBytes();
        else after = usedBytes();
      },
    });
    perPage.push((after - before) / quiet.faults);
  }
  const churn = timedRun({ threads: n, pagesPerThread: pages, churn: true });
  const range = timedRun({ threads: n, pagesPerThread: pages, mmapLock: 'range' });
  const hostPerFault = (host[0] + host[1] + host[2]) / 3;
  if (n === 1) hostBase = hostPerFault;
  if (n === 1) base = quiet.faultsPerSec;
  rows.push(
    `| ${n} | ${(quiet.faultsPerSec / 1e6).toFixed(2)} M | ${(quiet.faultsPerSec / base).toFixed(2)}× | ${(churn.faultsPerSec / 1e6).toFixed(2)} M | ${churn.churnOps} | ${((quiet.mmapLockRmws ?? 0) / quiet.faults).toFixed(1)} | ${(range.faultsPerSec / 1e6).toFixed(2)} M |`,
  );
  if (n === 1) {
    const ones = [0, 1, 2].map(() => faultRun(16_384, 1).bytesPerPage).sort((a, b) => a - b);
    console.error(
      `N=1: host memory ${ones[1].toFixed(0)} bytes per resident simulated page (median of 3 runs: ${ones.map((b) => b.toFixed(0)).join(', ')}; 16384 pages resident, bench/fault-run.ts, one thread)`,
    );
  }
  if (n === 64) {
    const sorted = [...perPage].sort((a, b) => a - b);
    console.error(
      `N=${n}: host memory ${sorted[1].toFixed(0)} bytes per resident simulated page (median of 3 runs: ${sorted.map((b) => b.toFixed(0)).join(', ')}; ${quiet.faults} pages resident)`,
    );
  }
  console.error(
    `N=${n} done in ${((performance.now() - t0) / 1000).toFixed(1)} s host; host µs per simulated fault ${hostPerFault.toFixed(1)} (${(hostPerFault / hostBase).toFixed(2)}× the 1-thread row; quiet/churn/range ${host.map((h) => h.toFixed(1)).join('/')}); effects per fault ${effects.map((e) => e.toFixed(0)).join('/')}; spin iterations skipped per fault ${skipped.map((e) => e.toFixed(0)).join('/')}`,
  );
}
console.log(rows.join('\n'));
const usage = process.resourceUsage();
console.error(
  `whole table: host CPU ${((usage.userCPUTime + usage.systemCPUTime) / 1e6).toFixed(1)} s, peak resident memory ${(usage.maxRSS / 1024).toFixed(0)} MiB`,
);
