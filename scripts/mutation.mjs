#!/usr/bin/env node
// Mutation testing of one package with StrykerJS: `pnpm mutation <package> [--all-tests] [stryker options]`,
// for example `pnpm mutation locks --mutate src/spinlock.ts`. The package needs a stryker.config.json whose
// vitest config honours SPF_MUTATION_TESTS (see packages/locks/vitest.mutation.config.ts).
//
// With one `--mutate src/<name>.ts`, only that file's own tests run (src/<name>.test.ts and
// src/<name>-*.test.ts): each primitive's tests must kill its own mutants. `--all-tests` runs the package's
// whole suite instead, and `--tests <globs>` a chosen set (comma-separated). Runs are incremental: results
// are kept in the package's reports/stryker-incremental-*.json (not in git), so a second run only tests
// mutants whose code or tests changed. Not part of CI (a whole package takes hours on 2 cores).
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
const allTests = rest.includes('--all-tests');
const args = rest.filter((a) => a !== '--all-tests');
const env = { ...process.env };
const t = args.indexOf('--tests');
const tests = t >= 0 ? args.splice(t, 2)[1] : undefined;
const m = args.indexOf('--mutate');
const target = m >= 0 ? args[m + 1] : undefined;
// A line range (`--mutate src/machine.ts:1-300`, Stryker's syntax) keeps the file's own tests and gets its own
// incremental file, so that the ranges of one big file can be run one after another.
const own = target?.match(/^src\/([\w./-]+)\.ts(?::([\d:-]+))?$/);
// A file in a folder (src/memory/pte-lock.ts) keeps its tests beside it; its incremental file is flattened.
const flat =
  own === null || own === undefined
    ? undefined
    : own[1].replace(/\//g, '_') + (own[2] === undefined ? '' : `-${own[2].replace(/:/g, '.')}`);
if (tests !== undefined) {
  // An explicit selection (comma-separated globs), e.g. one new test file against a file's survivors.
  env.SPF_MUTATION_TESTS = tests;
  const tag = tests.replace(/[^\w.-]+/g, '_');
  args.push('--incrementalFile', `reports/stryker-incremental-${flat ?? 'all'}-${tag}.json`);
  console.log(`mutation: ${target ?? 'every file'} judged by ${tests}`);
} else if (!allTests && own) {
  env.SPF_MUTATION_TESTS = `src/${own[1]}.test.ts,src/${own[1]}-*.test.ts`;
  // The incremental file is per test selection: results from another selection would be reused wrongly.
  args.push('--incrementalFile', `reports/stryker-incremental-${flat}.json`);
  console.log(
    `mutation: ${target} judged by its own tests (${env.SPF_MUTATION_TESTS}); --all-tests for the whole suite`,
  );
}
const bin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'stryker.cmd' : 'stryker');
const r = spawnSync(bin, ['run', 'stryker.config.json', ...args], { cwd: dir, stdio: 'inherit', env });
if (r.error) {
  console.error(`could not start Stryker (${r.error.message}); run pnpm install first`);
  process.exit(2);
}
process.exit(r.status ?? 1);
