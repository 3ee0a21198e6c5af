/**
 * Host-speed benchmark of the simulated fault path: anonymous 4 KiB write faults on one simulated CPU under
 * the timed policy (each fault: #PF entry, mmap_lock, page-table walk, page allocation and clearing, PTE
 * install, retry of the store), and host memory per resident simulated page.
 *
 * Run: npx tsx bench/faults.ts   (from packages/kernel)
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { boot } from '../src/index.js';

function faultRun(
  pages: number,
  value: number,
): { hostMs: number; faults: number; simNs: number; heapBytes: number } {
  const system = boot({ cpus: 1, memory: (pages + 8192) * 4096, checkInvariants: false });
  let faults = 0;
  system.spawnProcess('bench', function* (u) {
    const r = yield* u.mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
    for (let p = 0; p < pages; p++) yield* u.store8(r.value + p * 4096, value);
    faults = u.rusage().minflt;
    // Keep the pages resident for the memory measurement: measure before exit.
    (globalThis as { gc?: () => void }).gc?.();
    heap = process.memoryUsage();
  });
  let heap = process.memoryUsage();
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const res = system.run();
  const hostMs = performance.now() - t0;
  if (!res.ok) throw new Error(`run failed: ${res.failure?.message}`);
  const heapBytes = heap.heapUsed + heap.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  return { hostMs, faults, simNs: res.time, heapBytes };
}

faultRun(2000, 1); // warm-up
const n = Number(process.argv[2] ?? 100_000);
for (const [label, value] of [
  ['store of 0x5a (page contents allocated)', 0x5a],
  ['store of 0 (contents stay lazily zero)', 0],
] as const) {
  const r = faultRun(n, value);
  console.log(
    `${label}: ${r.faults} write faults in ${r.hostMs.toFixed(0)} ms host = ${Math.round(r.faults / (r.hostMs / 1000)).toLocaleString('en-US')} faults/s; ` +
      `simulated ${(r.simNs / 1e6).toFixed(2)} ms (${(r.simNs / r.faults).toFixed(0)} ns/fault); ` +
      `host memory ≈ ${(r.heapBytes / r.faults).toFixed(0)} bytes per resident page`,
  );
}
