/**
 * How fast the real kernel of this host takes anonymous 4 KiB write faults: builds bench/host-fault-rate.c
 * with the system's `cc` (through the conformance harness's cached `compileC`) and runs it. Read next to
 * `bench/faults.ts`, which times the simulator doing the same faults: the simulator models every memory
 * access of the fault path, so it cannot be faster than the kernel it models running natively.
 *
 * Run: npx tsx bench/host-fault-rate.ts   (from packages/kernel; Linux with `cc` only)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HostUnavailableError } from '../src/replay/errors.js';
import { compileC } from '../src/replay/host.js';

let binary: string;
try {
  binary = compileC(fileURLToPath(new URL('./host-fault-rate.c', import.meta.url)), 'bench');
} catch (e) {
  if (!(e instanceof HostUnavailableError)) throw e;
  console.error(`host-fault-rate: ${e.message}`);
  process.exit(2);
}
const run = spawnSync(binary, [], { encoding: 'utf8' });
process.stdout.write(run.stdout);
process.stderr.write(run.stderr);
process.exit(run.status ?? 1);
