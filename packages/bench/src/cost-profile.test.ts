import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCostModel } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { commandFor, renderReport, runExperiment } from './bench.js';
import { type BenchIo, runBenchCli } from './cli-main.js';
import {
  applyCostProfile,
  COST_PROFILE_FORMAT,
  CostProfileError,
  parseCostProfile,
  readCostProfile,
} from './cost-profile.js';
import { type Experiment, sweep } from './experiment.js';
import { parseResultsFile } from './results-file.js';
import { runConfig } from './run-config.js';

const good = { format: COST_PROFILE_FORMAT, name: 'slow clear', cost: { zeroPage: 1400 } };

/** pft on 1 CPU, 16 pages, classic, seed 0: the single-CPU fault path with no jitter. */
const tiny: Experiment = {
  id: 'E8',
  title: 'tiny',
  question: 'q',
  setup: () => 's',
  configs: (p) =>
    sweep('pft', 'pft', ['classic'], [1], p, (h, n) => ({
      cpus: n,
      handler: h,
      seed: 0,
      pagesPerThread: 16,
    })),
  report: () => ({ tables: [], plots: [], answer: 'a' }),
};

describe('cost profiles', () => {
  it('a valid profile parses, with only the entries it overrides', () => {
    const p = parseCostProfile(JSON.stringify(good), 'p.json');
    expect(p.cost).toEqual({ zeroPage: 1400 });
    expect(p.name).toBe('slow clear');
  });

  it.each([
    ['not JSON', '{ "format": ', /p\.json is not JSON/],
    [
      'a wrong format',
      JSON.stringify({ ...good, format: 'x' }),
      /"format" is "x", expected "spf-cost-profile\/1"/,
    ],
    ['no name', JSON.stringify({ ...good, name: '' }), /"name" must be a non-empty string/],
    ['no cost object', JSON.stringify({ ...good, cost: [1] }), /"cost" must be an object/],
    [
      'an entry the cost model does not have',
      JSON.stringify({ ...good, cost: { zeroPages: 1 } }),
      /"cost\.zeroPages" is not an entry of @spf\/machine's cost model; the entries are l1Hit, dram/,
    ],
    [
      'a negative latency',
      JSON.stringify({ ...good, cost: { syscall: -1 } }),
      /"cost\.syscall" must be a finite number of nanoseconds >= 0, got -1/,
    ],
    [
      'a latency given as a string',
      JSON.stringify({ ...good, cost: { syscall: '100' } }),
      /"cost\.syscall" must be a finite number/,
    ],
    [
      'a measured figure that is not a number',
      JSON.stringify({ ...good, measured: { x: 'fast' } }),
      /"measured\.x" must be a finite number/,
    ],
  ])('refuses %s with a message naming the file and the field', (_what, text, msg) => {
    expect(() => parseCostProfile(text, 'p.json')).toThrow(CostProfileError);
    expect(() => parseCostProfile(text, 'p.json')).toThrow(msg);
  });

  it('a missing file is refused with a message that says how to make one', () => {
    expect(() => readCostProfile('/nonexistent/p.json')).toThrow(
      /cannot read the cost profile \/nonexistent\/p\.json: ENOENT; write one with spf calibrate/,
    );
  });

  it('every key of the default cost model is accepted (the profile overrides the one table, it does not copy it)', () => {
    const all = Object.fromEntries(Object.keys(defaultCostModel).map((k) => [k, 7]));
    expect(parseCostProfile(JSON.stringify({ ...good, cost: all }), 'p.json').cost).toEqual(all);
  });

  it('a profile changes simulated results: a slower page clear makes every fault slower by at least that much', () => {
    const [config] = tiny.configs({ quick: true, seeds: 1 });
    const base = runConfig(config, 0).result;
    const use = { name: 'slow clear', path: 'p.json', cost: { zeroPage: defaultCostModel.zeroPage + 1000 } };
    const [slowConfig] = applyCostProfile([config], use);
    expect(slowConfig.params.cost).toEqual({ zeroPage: 1400 });
    const slow = runConfig(slowConfig, 0).result;
    expect(slow.faults).toBe(base.faults);
    expect(slow.simNs - base.simNs).toBeGreaterThanOrEqual(base.faults * 1000);
    expect(slow.score).toBeLessThan(base.score);
    // No profile: the configurations are left as they are.
    expect(applyCostProfile([config], null)[0]).toEqual(config);
  });

  it('a run with a profile says so in its result file, its report and the command that regenerates it', async () => {
    const use = { name: 'slow clear', path: 'p.json', cost: { zeroPage: 1400 } };
    const file = await runExperiment(tiny, { quick: true, seeds: 1 }, { costProfile: use });
    const plain = await runExperiment(tiny, { quick: true, seeds: 1 });
    expect(file.costModel).toBe('profile "slow clear" (p.json)');
    expect(plain.costModel).toBe('default');
    expect(file.plan).not.toBe(plain.plan);
    expect(parseResultsFile(JSON.stringify(file), 'r.json').costProfile).toEqual(use);
    expect(commandFor(file)).toContain('--profile p.json');
    expect((await renderReport(file, tiny)).markdown).toContain('cost model: profile "slow clear" (p.json)');
    const broken = { ...file, costProfile: { ...use, cost: { zeroPage: 'x' } } };
    expect(() => parseResultsFile(JSON.stringify(broken), 'r.json')).toThrow(
      /"costProfile": .*"cost\.zeroPage"/,
    );
  });

  it('spf bench run --profile refuses a bad profile before running anything (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spf-profile-'));
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ ...good, cost: { lineTransfer: -5 } }));
    const o = { out: '', err: '', tty: false } as BenchIo & { out: string; err: string };
    o.stdout = (s) => {
      o.out += s;
    };
    o.stderr = (s) => {
      o.err += s;
    };
    expect(await runBenchCli(['run', 'E8', '--quick', '--profile', path, '--out', dir], o)).toBe(2);
    expect(o.err).toContain(
      `${path} is not a usable cost profile: "cost.lineTransfer" must be a finite number`,
    );
    expect(o.out).toBe('');
  });
});
