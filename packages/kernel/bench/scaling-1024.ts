/**
 * One pft-like point at the machine's full size: 1,024 simulated CPUs, one thread each, each writing once to
 * 64 pages of its own pre-mapped private region (64 anonymous write faults per thread, 65,536 in all), classic
 * fault handler, rwsem mmap_lock, timed policy (the scaling experiment of `bench/scaling.ts`, which stops at
 * 64 threads). Prints the simulated result and what it cost the host: wall and CPU time of boot plus run (the
 * target is a minute) and the peak resident memory.
 *
 * Run: node --conditions=@spf/source --import tsx/esm bench/scaling-1024.ts [threads] [pagesPerThread]
 *      (from packages/kernel; defaults 1024 and 64)
 */
import { runScaling } from '../src/scenarios/scaling.js';

const threads = Number(process.argv[2] ?? 1024);
const pages = Number(process.argv[3] ?? 64);
const w0 = performance.now();
const c0 = process.cpuUsage();
const r = runScaling({ threads, pagesPerThread: pages });
const c = process.cpuUsage(c0);
const wallS = (performance.now() - w0) / 1000;
const cpuS = (c.user + c.system) / 1e6;
console.log(
  `${threads} simulated CPUs x ${pages} faults (classic handler, timed): ${r.faults} faults, ` +
    `${(r.faultsPerSec / 1e6).toFixed(3)} M faults per simulated second, ${(r.run.effects / r.faults).toFixed(0)} machine effects per fault, ${r.run.steps} steps`,
);
console.log(
  `host: ${wallS.toFixed(1)} s wall, ${cpuS.toFixed(1)} s CPU (boot and run; target 60 s), ` +
    `${((cpuS * 1e6) / r.run.steps).toFixed(2)} µs CPU per step, peak resident memory ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
);
