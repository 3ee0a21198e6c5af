import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic-write.js';
import { runExperiment } from './bench.js';
import { type BenchIo, runBenchCli } from './cli-main.js';
import type { Experiment } from './experiment.js';
import { sweep } from './experiment.js';
import { parseResultsFile } from './results-file.js';

function io(): BenchIo & { out: string; err: string } {
  const o = { out: '', err: '', tty: false } as BenchIo & { out: string; err: string };
  o.stdout = (s) => {
    o.out += s;
  };
  o.stderr = (s) => {
    o.err += s;
  };
  return o;
}

const strip = (recs: readonly { hostMs: number }[]) => recs.map(({ hostMs: _, ...r }) => r);

/** A small experiment for runner tests: pft at 1 and 2 CPUs under two handlers. */
const tiny: Experiment = {
  id: 'E4',
  title: 'tiny',
  question: 'q',
  setup: () => 's',
  configs: (p) =>
    sweep('pft', 'pft', ['classic', 'pervma'], [1, 2], p, (h, n, seed) => ({
      cpus: n,
      handler: h,
      seed,
      pagesPerThread: 4,
    })),
  report: () => ({ tables: [], plots: [], answer: 'a' }),
};

describe('spf bench', () => {
  it('gives the same records with 1 job and with 2 worker threads', async () => {
    const one = await runExperiment(tiny, { quick: true, seeds: 2 }, { jobs: 1 });
    const two = await runExperiment(tiny, { quick: true, seeds: 2 }, { jobs: 2 });
    expect(two.records).toHaveLength(8);
    expect(strip(two.records)).toEqual(strip(one.records));
  });

  it('runs an experiment in two shards that merge into the unsharded result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spf-bench-'));
    const args = ['E4', '--quick', '--cpus', '1', '--seeds', '1', '--jobs', '1'];
    const a = io();
    expect(await runBenchCli(['run', ...args, '--out', join(dir, 'whole')], a)).toBe(0);
    for (const s of ['0/2', '1/2'])
      expect(await runBenchCli(['run', ...args, '--shard', s, '--out', join(dir, 'parts')], io())).toBe(0);
    const parts = readdirSync(join(dir, 'parts')).sort();
    expect(parts).toEqual(['E4.shard-0-of-2.json', 'E4.shard-1-of-2.json']);
    const m = io();
    expect(
      await runBenchCli(
        ['merge', ...parts.map((p) => join(dir, 'parts', p)), '--out', join(dir, 'merged')],
        m,
      ),
    ).toBe(0);
    const whole = parseResultsFile(readFileSync(join(dir, 'whole', 'E4.json'), 'utf8'), 'whole');
    const merged = parseResultsFile(readFileSync(join(dir, 'merged', 'E4.json'), 'utf8'), 'merged');
    expect(strip(merged.records)).toEqual(strip(whole.records));
    expect(readdirSync(join(dir, 'merged')).sort()).toEqual(['E4-pft.svg', 'E4.csv', 'E4.json', 'E4.md']);
    expect(readFileSync(join(dir, 'merged', 'E4-pft.svg'), 'utf8')).toMatch(/^<svg/);
    expect(readFileSync(join(dir, 'merged', 'E4.md'), 'utf8')).toContain('## Answer');
    // A missing shard is named.
    const e = io();
    expect(await runBenchCli(['merge', join(dir, 'parts', parts[0]), '--out', join(dir, 'x')], e)).toBe(2);
    expect(e.err).toMatch(/configurations are missing .*run shard\(s\) 1\/2/);
    // compare gives a before/after row per configuration.
    const c = io();
    expect(
      await runBenchCli(['compare', join(dir, 'whole', 'E4.json'), join(dir, 'merged', 'E4.json')], c),
    ).toBe(0);
    expect(c.out).toContain('| pft/dufour/cpus=1/seed=1 |');
    expect(c.out).toContain('1.000×');
  });

  it('refuses bad input with a message that names the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['run', 'E99'], /unknown experiment "E99"; choose one of E1, E2, E3/],
      [['run', 'E1', '--cpus', '4'], /E1 runs the 2010 retry test on exactly 2 CPUs .*pass --cpus 2/],
      [['run', 'E4', '--cpus', '0'], /--cpus: 0 is outside 1..1024/],
      [['run', 'E4', '--cpus', '2000'], /--cpus: 2000 is outside 1..1024/],
      [['run', 'E4', '--cpus', '1,x'], /--cpus expects a comma-separated list/],
      [['run', 'E4', '--seeds', '0'], /--seeds expects a whole number from 1/],
      [['run', 'E4', '--shard', '3/3'], /index must be from 0 to n-1/],
      [['run'], /needs an experiment/],
      [['frobnicate'], /unknown bench command frobnicate/],
      [['compare', 'only-one.json'], /exactly two result files/],
    ];
    for (const [argv, msg] of cases) {
      const o = io();
      expect(await runBenchCli(argv, o), argv.join(' ')).toBe(2);
      expect(o.err).toMatch(msg);
    }
    const dir = mkdtempSync(join(tmpdir(), 'spf-bench-bad-'));
    writeFileSync(join(dir, 'bad.json'), '{"format": "spf-bench-results/1", "experiment": 3}');
    const o = io();
    expect(await runBenchCli(['compare', join(dir, 'bad.json'), join(dir, 'bad.json')], o)).toBe(2);
    expect(o.err).toMatch(/bad.json is not an spf bench result file: "experiment" is missing/);
    const n = io();
    expect(await runBenchCli(['compare', join(dir, 'none.json'), join(dir, 'bad.json')], n)).toBe(2);
    expect(n.err).toMatch(/cannot read .*none.json: ENOENT/);
  });

  it('lists every experiment and workload', async () => {
    const o = io();
    expect(await runBenchCli(['list'], o)).toBe(0);
    for (const id of [
      'E3',
      'E4',
      'E5',
      'E6',
      'E7',
      'E8',
      'ebizzy',
      'page_fault1',
      'malloc1',
      'pft',
      'kernbench',
      'app_launch',
      'gup_reader',
    ]) {
      expect(o.out).toContain(id);
    }
  });

  it('writes atomically: a failed write leaves the old file and no temporary file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spf-bench-atomic-'));
    const f = join(dir, 'r.json');
    writeFileAtomic(f, 'old');
    mkdirSync(join(dir, 'd'));
    expect(() => writeFileAtomic(join(dir, 'd'), 'new')).toThrow();
    expect(readFileSync(f, 'utf8')).toBe('old');
    writeFileAtomic(f, 'new');
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(readdirSync(dir).sort()).toEqual(['d', 'r.json']);
  });
});
