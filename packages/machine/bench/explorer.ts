// Explorer figures (not a test), for the README and issue notes:
//   npx tsx bench/explorer.ts            (from packages/machine)
// 1. schedules per second on a 2-CPU, 100-effect scenario under random, pct and dfs;
// 2. how many schedules and how much host time the existing explored tests of @spf/machine, @spf/locks,
//    @spf/pagetable and @spf/vma take to find each of their seeded races (every exploration in those test
//    files that ends with a failure), by running the test files under vitest with bench/explore-stats-setup.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtomicCell, explore, type Scenario } from '../src/index.js';

// A 2-CPU scenario of 100 effects in all (50 per CPU), as in the target.
const hundredEffects: Scenario = {
  cpus: 2,
  setup(m) {
    const x = new AtomicCell(0, 'x');
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `t${i}`, function* () {
        for (let k = 0; k < 50; k++) yield* x.fetchAdd(1);
      });
    }
  },
};

/** Schedules per second of host wall time and of this process's CPU time (less sensitive to other jobs). */
function schedulesPerSecond(policy: 'random' | 'pct' | 'dfs', runs: number): { wall: number; cpu: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = explore(hundredEffects, { policy, runs, bound: 2 });
  const c = process.cpuUsage(c0);
  return { wall: r.runs / ((performance.now() - t0) / 1000), cpu: r.runs / ((c.user + c.system) / 1e6) };
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log('explorer, schedules per second for a 2-CPU, 100-effect scenario (target: at least 20,000)');
console.log('| policy | schedules/s (wall) | schedules/s (CPU time) |');
console.log('|---|---:|---:|');
for (const p of ['random', 'pct', 'dfs'] as const) {
  schedulesPerSecond(p, 500);
  const r = schedulesPerSecond(p, 20_000);
  console.log(`| ${p} | ${fmt(r.wall)} | ${fmt(r.cpu)} |`);
}

const here = dirname(fileURLToPath(import.meta.url));
const packages = resolve(here, '../..');
const suites: Array<[string, string[]]> = [
  [
    'machine',
    ['src/explore.test.ts', 'src/machine.test.ts', 'src/semantics.test.ts', 'src/spin-wait.test.ts'],
  ],
  ['locks', ['src/spinlock.test.ts', 'src/rwsem.test.ts', 'src/seqcount.test.ts', 'src/rcu.test.ts']],
  ['pagetable', ['src/page-tables.test.ts', 'src/race.test.ts']],
  ['vma', ['src/checkers.test.ts', 'src/speculative-reader.test.ts', 'src/tlb-shootdown.test.ts']],
];
const dir = mkdtempSync(join(tmpdir(), 'spf-explore-'));
const stats = join(dir, 'stats.jsonl');
for (const [pkg, files] of suites) {
  const r = spawnSync(
    'npx',
    ['vitest', 'run', ...files, '--config', join(here, 'vitest.explore-stats.config.ts'), '--root', '.'],
    { cwd: join(packages, pkg), env: { ...process.env, SPF_EXPLORE_STATS: stats }, encoding: 'utf8' },
  );
  if (r.status !== 0) console.error(`(vitest in ${pkg} exited with ${r.status}: some tests failed)`);
}
type Row = { file: string; test: string; policy: string; runs: number; found: string | null; hostMs: number };
const rows: Row[] = readFileSync(stats, 'utf8')
  .trim()
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Row);
rmSync(dir, { recursive: true, force: true });
console.log('\nseeded races found by the explored tests (every exploration that ended with a failure)');
console.log('| test file | test | policy | schedules to find | failure | host ms |');
console.log('|---|---|---|---:|---|---:|');
for (const r of rows.filter((x) => x.found !== null)) {
  const test = r.test.length > 90 ? `${r.test.slice(0, 87)}...` : r.test;
  console.log(`| ${r.file} | ${test} | ${r.policy} | ${r.runs} | ${r.found} | ${r.hostMs.toFixed(1)} |`);
}
const clean = rows.filter((x) => x.found === null);
const runs = clean.reduce((a, r) => a + r.runs, 0);
const ms = clean.reduce((a, r) => a + r.hostMs, 0);
console.log(
  `\n${clean.length} explorations found nothing (as their tests expect): ${fmt(runs)} schedules in ${(ms / 1000).toFixed(1)} s host (${fmt(runs / (ms / 1000))} schedules/s).`,
);
