import { describe, expect, it } from 'vitest';
import type { RunRecord } from './experiment.js';
import {
  mergeResults,
  parseResultsFile,
  parseShard,
  RESULTS_FORMAT,
  type ResultsFile,
  ResultsFileError,
  shardIndices,
} from './results-file.js';

function rec(index: number): RunRecord {
  return {
    index,
    hostMs: 1,
    config: {
      id: `s/v/cpus=1/seed=${index}`,
      workload: 'pft',
      series: 's',
      variant: 'v',
      params: { cpus: 1, handler: 'classic', seed: index },
    },
    result: { score: index, unit: 'x', simNs: 1, faults: 1, speculativeShare: 0, aborts: {}, extra: {} },
  };
}
function shardFile(
  index: number,
  count: number,
  total: number,
  indices = shardIndices(total, { index, count }),
): ResultsFile {
  return {
    format: RESULTS_FORMAT,
    experiment: 'E8',
    profile: { quick: true, seeds: 1 },
    plan: 'abc',
    configCount: total,
    shard: { index, count },
    costModel: 'default',
    records: indices.map(rec),
  };
}

describe('result files, shards and merge', () => {
  it('shards partition the configurations', () => {
    const all = [0, 1, 2].flatMap((i) => shardIndices(10, { index: i, count: 3 }));
    expect(all.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(shardIndices(4, null)).toEqual([0, 1, 2, 3]);
  });

  it('parses i/n and refuses an index outside 0..n-1', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(() => parseShard('4/4')).toThrow(/index must be from 0 to n-1/);
    expect(() => parseShard('a/b')).toThrow(/expects i\/n/);
  });

  it('merges complete shards in configuration order', () => {
    const m = mergeResults([0, 1, 2].map((i) => ({ path: `s${i}.json`, file: shardFile(i, 3, 7) })));
    expect(m.shard).toBeNull();
    expect(m.records.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('refuses overlapping shards, naming both files', () => {
    expect(() =>
      mergeResults([
        { path: 'a.json', file: shardFile(0, 2, 4) },
        { path: 'b.json', file: shardFile(0, 2, 4) },
      ]),
    ).toThrow(/configuration 0 .* is in both a.json and b.json: the shards overlap/);
  });

  it('refuses missing shards, naming the shard to rerun', () => {
    expect(() => mergeResults([{ path: 'a.json', file: shardFile(0, 3, 6) }])).toThrow(
      /4 of 6 configurations are missing .*run shard\(s\) 1\/3, 2\/3/,
    );
  });

  it('refuses shards of different runs', () => {
    const other = { ...shardFile(1, 2, 4), plan: 'zzz' };
    expect(() =>
      mergeResults([
        { path: 'a.json', file: shardFile(0, 2, 4) },
        { path: 'b.json', file: other },
      ]),
    ).toThrow(ResultsFileError);
  });

  it('refuses malformed files with the path and the problem', () => {
    expect(() => parseResultsFile('{', 'x.json')).toThrow(/x.json is not JSON/);
    expect(() => parseResultsFile('{"format":"other"}', 'x.json')).toThrow(/"format" is "other"/);
    const good = shardFile(0, 1, 2);
    expect(parseResultsFile(JSON.stringify(good), 'ok.json').records).toHaveLength(2);
    const bad = { ...good, records: [{ index: 9, config: { id: 'a' }, result: { score: 1 } }] };
    expect(() => parseResultsFile(JSON.stringify(bad), 'y.json')).toThrow(
      /record 0 has index 9 outside 0..1/,
    );
  });
});
