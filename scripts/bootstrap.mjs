#!/usr/bin/env node
// The two README commands on a fresh machine that has only Node >= 20.19 and npm.
//   npm start  -> install what is missing, build, run the main job
//   npm test   -> install what is missing, build, typecheck, lint, run every test (and @spf/kernel's suite
//                 under every non-classic fault handler: its test:handlers script)
// pnpm is taken from the PATH when it is the pinned version, otherwise through npx (no global install).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmVersion = pkg.packageManager.replace(/^pnpm@/, '');
const mode = process.argv[2];
const extra = process.argv.slice(3);

const env = {
  ...process.env,
  ASTRO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  TURBO_TELEMETRY_DISABLED: '1',
  COREPACK_ENABLE_DOWNLOAD_PROMPT: '0',
};

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`\nfailed (exit ${r.status}): ${[cmd, ...args].join(' ')}`);
    process.exit(r.status ?? 1);
  }
}

function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8', env });
  if (probe.status === 0 && probe.stdout.trim() === pnpmVersion) return ['pnpm', []];
  return ['npx', ['-y', `pnpm@${pnpmVersion}`]];
}

const [pnpm, pre] = pnpmCommand();
const p = (...args) => run(pnpm, [...pre, ...args]);

if (mode !== 'start' && mode !== 'test') {
  console.error('usage: node scripts/bootstrap.mjs start|test');
  process.exit(2);
}

p('install', '--frozen-lockfile');
if (mode === 'test') {
  p('exec', 'biome', 'ci', '.');
  p(
    'exec',
    'turbo',
    'run',
    'build',
    'typecheck',
    'lint',
    'test',
    'test:handlers',
    '--concurrency=2',
    ...extra,
  );
} else {
  p('exec', 'turbo', 'run', 'build', '--concurrency=2');
  p('run', '--silent', 'main', ...extra);
}
