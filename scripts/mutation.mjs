#!/usr/bin/env node
// Mutation testing of one package with StrykerJS: `pnpm mutation <package> [stryker options]`, for example
// `pnpm mutation locks --mutate src/spinlock.ts`. The package needs a stryker.config.json (see packages/locks).
// Stryker runs the test files that import the mutated file (vitest `related`) and, with per-test coverage,
// only the tests that reach each mutant. Runs are incremental: results are kept per mutated file in the
// package's reports/stryker-incremental-<file>.json (not in git), so a second run only tests mutants whose
// code or tests changed. Never run two at once in one package: the sources are mutated in place, and two
// instrumented files in one test process switch each other's mutants on. Not part of CI (a whole package
// takes hours on 2 cores).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name.startsWith('-')) {
  console.error(
    'usage: pnpm mutation <package> [stryker options], e.g. pnpm mutation locks --mutate src/spinlock.ts',
  );
  process.exit(2);
}
const dir = join(root, 'packages', name);
const config = join(dir, 'stryker.config.json');
if (!existsSync(config)) {
  console.error(
    `packages/${name}/stryker.config.json does not exist: add one (see packages/locks) to mutation-test ${name}`,
  );
  process.exit(2);
}
const args = [...rest];
const m = args.indexOf('--mutate');
const own = (m >= 0 ? args[m + 1] : undefined)?.match(/^src\/([\w.-]+)\.ts$/);
if (own) args.push('--incrementalFile', `reports/stryker-incremental-${own[1]}.json`);
const bin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'stryker.cmd' : 'stryker');
const r = spawnSync(bin, ['run', 'stryker.config.json', ...args], { cwd: dir, stdio: 'inherit' });
if (r.error) {
  console.error(`could not start Stryker (${r.error.message}); run pnpm install first`);
  process.exit(2);
}
process.exit(r.status ?? 1);
