/**
 * Host-speed benchmark of the simulated fault path: anonymous 4 KiB write faults on one simulated CPU under
 * the timed policy (each fault: #PF entry, mmap_lock, page-table walk, page allocation and clearing, PTE
 * install, retry of the store), and host memory per resident simulated page.
 *
 * Run: node --expose-gc --import tsx/esm bench/faults.ts [pages]   (from packages/kernel; `pnpm bench`)
 * Without --expose-gc the memory figure includes garbage not yet collected.
 */
import { faultRun } from './fault-run.js';

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
