/**
 * Records the corpus of host outputs for file-backed replay scripts (conformance/host-file-outputs/):
 * every hand-written `<name>.script` there, plus generated scripts that mix files and anonymous memory
 * (`gen-<seed>.script`), run through the C harness on this host. Each script runs RUNS times; a script whose
 * output is not identical every time (the host raced itself, e.g. fault-around right after a major fault) is
 * reported and, if generated, left out; a hand-written one makes the run fail. Writes `<name>.out` next to
 * each script and `host.txt` with the probe (kernel, read_ahead_kb, fault-around) the outputs depend on.
 *
 * Run: pnpm exec tsx scripts/record-host-file-outputs.ts [generated-count] (from packages/kernel).
 * Exit status: 0 when every hand-written script was stable, 1 otherwise, 2 when the host cannot run files.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateScript } from '../src/replay/generate.js';
import { probeHost, runOnHost } from '../src/replay/host.js';
import { FILE_CORPUS_OPTIONS } from '../src/test-support/file-known-differences.js';

const RUNS = 5;
const dir = fileURLToPath(new URL('../conformance/host-file-outputs/', import.meta.url));
const generatedCount = Number(process.argv[2] ?? 60);

const GENERATED_OPTIONS = FILE_CORPUS_OPTIONS;

const probe = probeHost();
if (probe.files === undefined) {
  console.error(`the host cannot run file scripts: ${probe.reason ?? probe.filesReason}`);
  process.exit(2);
}

/** Runs a script RUNS times; returns its output, or null if the runs disagreed. */
function stableOutput(script: string): string | null {
  const first = runOnHost(script);
  for (let i = 1; i < RUNS; i++) if (runOnHost(script) !== first) return null;
  return first;
}

let failed = false;
const hand = readdirSync(dir)
  .filter((f) => f.endsWith('.script') && !f.startsWith('gen-'))
  .sort();
for (const f of hand) {
  const out = stableOutput(readFileSync(join(dir, f), 'utf8'));
  if (out === null) {
    console.error(`${f}: the host printed different outputs in ${RUNS} runs; make the script avoid the race`);
    failed = true;
    continue;
  }
  writeFileSync(join(dir, f.replace(/\.script$/, '.out')), out);
  console.log(`${f}: recorded`);
}

for (const f of readdirSync(dir).filter((f) => f.startsWith('gen-'))) rmSync(join(dir, f));
let kept = 0;
const unstable: number[] = [];
for (let seed = 1; seed <= generatedCount; seed++) {
  const script = generateScript(seed, GENERATED_OPTIONS);
  const out = stableOutput(script);
  if (out === null) {
    unstable.push(seed);
    continue;
  }
  writeFileSync(join(dir, `gen-${seed}.script`), script);
  writeFileSync(join(dir, `gen-${seed}.out`), out);
  kept++;
}
console.log(
  `generated: ${kept} of ${generatedCount} recorded; unstable on the host (left out): ${unstable.join(', ') || 'none'}`,
);

const f = probe.files;
writeFileSync(
  join(dir, 'host.txt'),
  [
    `kernel ${release()}`,
    `zero-page ${probe.zeroPage ? 'yes' : 'no'}`,
    `read-ahead-kb ${f.readAheadKb ?? 'unknown'}`,
    `fault-around-pages ${f.faultAroundPages}`,
    `generated ${JSON.stringify(GENERATED_OPTIONS)} seeds 1-${generatedCount} unstable ${unstable.join(',') || 'none'}`,
    '',
  ].join('\n'),
);
process.exit(failed ? 1 : 0);
