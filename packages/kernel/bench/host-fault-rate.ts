/**
 * The simulator's fault rate against the host kernel's own, measured in one run: builds
 * bench/host-fault-rate.c with the system's `cc` (through the conformance harness's cached `compileC`), then
 * alternates rounds of the real kernel taking anonymous 4 KiB write faults (the C program: best of its 5
 * passes over 65,536 fresh pages) and the simulator taking the same faults (bench/fault-run.ts: one simulated
 * CPU, timed policy, stores of 0x5a like the C program, the faulting loop alone timed). Alternating keeps the
 * ratio meaningful on a host whose speed drifts. Both sides are timed in wall time and in their process's CPU
 * time; the ratio is taken on CPU time, which other jobs on a shared host distort less (the wall-time ratio is
 * printed too). Prints each round and the median ratio; the simulator models every memory access of the fault
 * path, so it cannot be faster than the kernel it models running natively.
 *
 * Run: npx tsx bench/host-fault-rate.ts [rounds] [simulated pages per round]   (from packages/kernel; Linux
 *      with `cc` only; `pnpm bench:host`)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HostUnavailableError } from '../src/replay/errors.js';
import { compileC } from '../src/replay/host.js';
import { faultRun } from './fault-run.js';

const rounds = Number(process.argv[2] ?? 5);
const simPages = Number(process.argv[3] ?? 20_000);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(simPages) || simPages < 1) {
  console.error('usage: host-fault-rate.ts [rounds >= 1] [simulated pages per round >= 1]');
  process.exit(2);
}

let binary: string;
try {
  binary = compileC(fileURLToPath(new URL('./host-fault-rate.c', import.meta.url)), 'bench');
} catch (e) {
  if (!(e instanceof HostUnavailableError)) throw e;
  console.error(`host-fault-rate: ${e.message}`);
  process.exit(2);
}

/** Host wall and CPU ns per fault of the real kernel (one run of the C program: best of its 5 passes). */
function hostKernelNs(): { wall: number; cpu: number } {
  const run = spawnSync(binary, [], { encoding: 'utf8' });
  const m = /host kernel: (\d+) ns per .*CPU time (\d+) ns per fault/.exec(run.stdout);
  if (run.status !== 0 || m === null) {
    process.stderr.write(run.stderr);
    console.error(`host-fault-rate: the C program failed (exit ${run.status}): ${run.stdout}`);
    process.exit(1);
  }
  return { wall: Number(m[1]), cpu: Number(m[2]) };
}

const rate = (ns: number) => Math.round(1e9 / ns).toLocaleString('en-US');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

for (let k = 0; k < 3; k++) faultRun(2000, 0x5a); // warm-up: module loading and the JIT
const kernelCpu: number[] = [];
const simCpu: number[] = [];
const wallRatios: number[] = [];
for (let r = 0; r < rounds; r++) {
  const k = hostKernelNs();
  const s = faultRun(simPages, 0x5a);
  const sWall = (s.loopMs * 1e6) / s.faults;
  const sCpu = (s.loopCpuMs * 1e6) / s.faults;
  kernelCpu.push(k.cpu);
  simCpu.push(sCpu);
  wallRatios.push(sWall / k.wall);
  console.log(
    `round ${r + 1}: host kernel ${k.cpu.toFixed(0)} ns CPU per fault (${rate(k.cpu)}/s; wall ${k.wall.toFixed(0)} ns); ` +
      `simulator ${sCpu.toFixed(0)} ns CPU per fault (${rate(sCpu)}/s; wall ${sWall.toFixed(0)} ns; ${s.faults} faults, 1 simulated CPU, timed); ` +
      `simulator/kernel rate 1/${(sCpu / k.cpu).toFixed(1)} (wall 1/${(sWall / k.wall).toFixed(1)})`,
  );
}
const ratios = kernelCpu.map((k, i) => simCpu[i] / k);
console.log(
  `median over ${rounds} rounds: host kernel ${rate(median(kernelCpu))} faults per CPU second, simulator ${rate(median(simCpu))}; ` +
    `the simulator runs at 1/${median(ratios).toFixed(1)} of the host kernel's rate (wall time: 1/${median(wallRatios).toFixed(1)}; target: 1/10 or better)`,
);
