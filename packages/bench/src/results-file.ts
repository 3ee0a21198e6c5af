import { createHash } from 'node:crypto';
import { COST_PROFILE_FORMAT, parseCostProfile, type ProfileUse } from './cost-profile.js';
import type { Profile, RunConfig, RunRecord } from './experiment.js';

/** The format tag of a result file. */
export const RESULTS_FORMAT = 'spf-bench-results/1';

/** A shard of an experiment's configuration list: `index` of `count` (0-based, as a Kubernetes Indexed Job numbers its pods). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** A result file: one experiment's records (all of them, or one shard's). */
export interface ResultsFile {
  readonly format: typeof RESULTS_FORMAT;
  readonly experiment: string;
  readonly profile: Profile;
  /** Hash of the experiment's whole configuration list: shards of one sweep agree on it. */
  readonly plan: string;
  /** Configurations in the whole sweep. */
  readonly configCount: number;
  /** null for a whole sweep. */
  readonly shard: Shard | null;
  /**
   * Which cost model the machine used: `default` (@spf/machine's documented table) or `profile "<name>"
   * (<path>)` for a run with `--profile`.
   */
  readonly costModel: string;
  /** The cost profile of a `--profile` run (absent for the default model). */
  readonly costProfile?: ProfileUse;
  readonly records: readonly RunRecord[];
}

/** A result file that cannot be used: says which file and what is wrong with it. */
export class ResultsFileError extends Error {
  override readonly name = 'ResultsFileError';
}

/** Hash of a configuration list (ids, workloads and parameters). */
export function planHash(configs: readonly RunConfig[]): string {
  return createHash('sha256').update(JSON.stringify(configs)).digest('hex').slice(0, 16);
}

/** The configurations of shard `index` of `count`: every `count`-th one starting at `index`. */
export function shardIndices(total: number, shard: Shard | null): number[] {
  const out: number[] = [];
  for (let i = 0; i < total; i++) if (shard === null || i % shard.count === shard.index) out.push(i);
  return out;
}

/** Parses `i/n` of `--shard` (0 ≤ i < n). */
export function parseShard(text: string): Shard {
  const m = /^([0-9]+)\/([0-9]+)$/.exec(text);
  if (!m) throw new RangeError(`--shard expects i/n (for example 0/4), got ${JSON.stringify(text)}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) {
    throw new RangeError(
      `--shard ${text}: the index must be from 0 to n-1 and n at least 1 (shards are 0/${Math.max(count, 1)} to ${Math.max(count, 1) - 1}/${Math.max(count, 1)})`,
    );
  }
  return { index, count };
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Checks that `text` (the contents of `path`) is a result file and returns it; otherwise a clear error. */
export function parseResultsFile(text: string, path: string): ResultsFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultsFileError(
      `${path} is not JSON (${(e as Error).message}); pass a .json file written by spf bench run`,
    );
  }
  const bad = (what: string) => new ResultsFileError(`${path} is not an spf bench result file: ${what}`);
  if (!isObj(data)) throw bad('the top level is not an object');
  if (data.format !== RESULTS_FORMAT)
    throw bad(`"format" is ${JSON.stringify(data.format)}, expected ${JSON.stringify(RESULTS_FORMAT)}`);
  if (typeof data.experiment !== 'string') throw bad('"experiment" is missing');
  if (typeof data.plan !== 'string') throw bad('"plan" is missing');
  if (!Number.isInteger(data.configCount) || (data.configCount as number) < 1)
    throw bad('"configCount" is not a positive integer');
  if (
    !isObj(data.profile) ||
    typeof data.profile.quick !== 'boolean' ||
    !Number.isInteger(data.profile.seeds)
  )
    throw bad('"profile" is malformed');
  if (
    data.shard !== null &&
    !(isObj(data.shard) && Number.isInteger(data.shard.index) && Number.isInteger(data.shard.count))
  )
    throw bad('"shard" is malformed');
  if (data.costProfile !== undefined) {
    const cp = data.costProfile;
    if (!isObj(cp) || typeof cp.path !== 'string')
      throw bad('"costProfile" is malformed (needs name, path, cost)');
    try {
      parseCostProfile(
        JSON.stringify({ format: COST_PROFILE_FORMAT, name: cp.name, cost: cp.cost }),
        cp.path,
      );
    } catch (e) {
      throw bad(`"costProfile": ${(e as Error).message}`);
    }
  }
  if (!Array.isArray(data.records)) throw bad('"records" is not an array');
  data.records.forEach((r, i) => {
    if (
      !isObj(r) ||
      !Number.isInteger(r.index) ||
      !isObj(r.config) ||
      typeof r.config.id !== 'string' ||
      !isObj(r.result) ||
      typeof r.result.score !== 'number'
    ) {
      throw bad(`record ${i} is malformed (needs index, config.id and result.score)`);
    }
    if ((r.index as number) < 0 || (r.index as number) >= (data.configCount as number))
      throw bad(`record ${i} has index ${r.index} outside 0..${(data.configCount as number) - 1}`);
  });
  return data as unknown as ResultsFile;
}

/**
 * Joins shard files of one sweep into the whole. Throws {@link ResultsFileError} when they are of different
 * experiments or plans, when two shards hold the same configuration (overlap), or when configurations
 * are missing (names the first few missing indices and the shards to rerun).
 */
export function mergeResults(files: readonly { path: string; file: ResultsFile }[]): ResultsFile {
  if (files.length === 0) throw new ResultsFileError('merge needs at least one result file');
  const first = files[0];
  for (const f of files) {
    if (f.file.experiment !== first.file.experiment || f.file.plan !== first.file.plan) {
      throw new ResultsFileError(
        `${f.path} is from ${f.file.experiment} (plan ${f.file.plan}) but ${first.path} is from ${first.file.experiment} (plan ${first.file.plan}); merge the shards of one run only`,
      );
    }
  }
  const byIndex = new Map<number, { rec: RunRecord; path: string }>();
  for (const f of files) {
    for (const rec of f.file.records) {
      const seen = byIndex.get(rec.index);
      if (seen) {
        throw new ResultsFileError(
          `configuration ${rec.index} (${rec.config.id}) is in both ${seen.path} and ${f.path}: the shards overlap; merge each shard once`,
        );
      }
      byIndex.set(rec.index, { rec, path: f.path });
    }
  }
  const missing: number[] = [];
  for (let i = 0; i < first.file.configCount; i++) if (!byIndex.has(i)) missing.push(i);
  if (missing.length > 0) {
    const count = first.file.shard?.count;
    const shards = count
      ? [...new Set(missing.map((i) => i % count))].map((s) => `${s}/${count}`).join(', ')
      : 'the missing shards';
    throw new ResultsFileError(
      `${missing.length} of ${first.file.configCount} configurations are missing (indices ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}); run shard(s) ${shards} and merge again`,
    );
  }
  const records = [...byIndex.values()].map((x) => x.rec).sort((a, b) => a.index - b.index);
  return { ...first.file, shard: null, records };
}
