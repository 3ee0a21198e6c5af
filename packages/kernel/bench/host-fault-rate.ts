/**
 * How fast the real kernel of this host takes anonymous 4 KiB write faults: builds bench/host-fault-rate.c
 * with the system's `cc` and runs it. Read next to `bench/faults.ts`, which times the simulator doing the
 * same faults: the simulator models every memory access of the fault path, so it cannot be faster than the
 * kernel it models running natively.
 *
 * Run: npx tsx bench/host-fault-rate.ts   (from packages/kernel; Linux with `cc` only)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.platform !== 'linux') {
  console.error(
    `host-fault-rate: this measures the Linux kernel's fault path; this host runs ${process.platform}`,
  );
  process.exit(2);
}
const source = fileURLToPath(new URL('./host-fault-rate.c', import.meta.url));
const binary = join(mkdtempSync(join(tmpdir(), 'spf-host-fault-rate-')), 'host-fault-rate');
const cc = spawnSync('cc', ['-O2', '-std=gnu11', '-Wall', '-o', binary, source], { encoding: 'utf8' });
if (cc.error !== undefined || cc.status !== 0) {
  console.error(`host-fault-rate: cannot compile ${source} with cc: ${cc.error?.message ?? cc.stderr}`);
  process.exit(2);
}
const run = spawnSync(binary, [], { encoding: 'utf8' });
process.stdout.write(run.stdout);
process.stderr.write(run.stderr);
process.exit(run.status ?? 1);
