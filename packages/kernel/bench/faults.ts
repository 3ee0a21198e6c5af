/**
 * Host-speed benchmark of the simulated fault path: anonymous 4 KiB write faults on one simulated CPU under
 * the timed policy (each fault: #PF entry, mmap_lock, page-table walk, page allocation and clearing, PTE
 * install, retry of the store), and host memory per resident simulated page.
 *
 * Run: node --expose-gc --import tsx/esm bench/faults.ts [pages]   (from packages/kernel; `pnpm bench`)
 * Without --expose-gc the memory figure includes garbage not yet collected.
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { boot } from '../src/index.js';

const gc = (globalThis as { gc?: () => void }).gc;

function usedBytes(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function faultRun(
  pages: number,
  value: number,
): { hostMs: number; loopMs: number; faults: number; simNs: number; bytesPerPage: number } {
  const system = boot({ cpus: 1, memory: (pages + 8192) * 4096, checkInvariants: false });
  let faults = 0;
  let before = 0;
  let after = 0;
  let loopMs = 0;
  system.spawnProcess('bench', function* (u) {
    const r = yield* u.mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
    before = usedBytes();
    const l0 = performance.now(); // host time of the faulting loop alone (no boot, mmap or exit)
    for (let p = 0; p < pages; p++) yield* u.store8(r.value + p * 4096, value);
    loopMs = performance.now() - l0;
    faults = u.rusage().minflt;
    after = usedBytes(); // the pages are still resident here (the process has not exited)
  });
  const t0 = performance.now();
  const res = system.run();
  const hostMs = performance.now() - t0;
  if (!res.ok) throw new Error(`run failed: ${res.failure?.message}`);
  return { hostMs, loopMs, faults, simNs: res.time, bytesPerPage: (after - before) / faults };
}

faultRun(2000, 0); // warm-up (stores of 0: leaves no page contents behind to be collected later)
const n = Number(process.argv[2] ?? 100_000);
for (const [label, value] of [
  ['store of 0 (contents stay lazily zero)', 0],
  ['store of 0x5a (page contents allocated)', 0x5a],
] as const) {
  const r = faultRun(n, value);
  console.log(
    `${label}: ${r.faults} write faults; faulting loop ${r.loopMs.toFixed(0)} ms host = ` +
      `${Math.round(r.faults / (r.loopMs / 1000)).toLocaleString('en-US')} faults/s ` +
      `(whole run with boot and exit ${r.hostMs.toFixed(0)} ms); ` +
      `simulated ${(r.simNs / 1e6).toFixed(2)} ms (${(r.simNs / r.faults).toFixed(0)} ns/fault); ` +
      `host memory ≈ ${r.bytesPerPage.toFixed(0)} bytes per resident page`,
  );
}
