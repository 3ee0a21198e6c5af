/**
 * The kernel's test matrix (issue 13 item 6): runs this package's whole vitest suite once per fault handler
 * of `matrixHandlerNames()` (every registered handler except classic, which `npm test` already covers), each time with SPF_FAULT_HANDLER set
 * so that every boot() which names no handler uses that one (src/test-support/matrix-setup.ts). Tests that
 * pin classic-only facts are skipped with their reason in the title (`itClassicOnly`).
 *
 * Run: npm run test:handlers [-- <vitest arguments>] (from packages/kernel), e.g. `-- src/system.test.ts`;
 *      SPF_MATRIX_HANDLERS=dufour,pervma limits the handlers.
 * Exit status: 0 if the suite passed under every handler, otherwise 1 (after running all of them).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { matrixHandlerNames } from '../src/test-support/handler-matrix.js';

const only = process.env.SPF_MATRIX_HANDLERS?.split(',').filter((s) => s !== '');
const all = matrixHandlerNames();
const unknown = (only ?? []).filter((n) => !all.includes(n));
if (unknown.length > 0) {
  console.error(
    `test:handlers: unknown handler(s) ${unknown.join(', ')} in SPF_MATRIX_HANDLERS; choose from ${all.join(', ')}`,
  );
  process.exit(2);
}
const names = only ?? all;
// vitest's own entry point, run by this node: no npx (and none of its warnings) in between.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
// pnpm passes a leading `--` through.
const vitestArgs = process.argv.slice(2).filter((a, i) => i > 0 || a !== '--');
const results: string[] = [];
let failed = 0;
for (const name of names) {
  console.log(`\n=== @spf/kernel tests under the ${name} fault handler (SPF_FAULT_HANDLER=${name}) ===`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [vitest, 'run', ...vitestArgs], {
    stdio: 'inherit',
    env: { ...process.env, SPF_FAULT_HANDLER: name },
  });
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  const ok = r.status === 0;
  if (!ok) failed++;
  results.push(`${name}: ${ok ? 'passed' : `FAILED (exit ${r.status ?? r.signal})`} in ${secs} s`);
}
console.log(`\ntest matrix: ${results.join('; ')}`);
process.exit(failed === 0 ? 0 : 1);
