import { readFileSync } from 'node:fs';
import { type CostModel, defaultCostModel } from '@spf/machine';
import type { RunConfig } from './experiment.js';

/** The format tag of a cost profile file. */
export const COST_PROFILE_FORMAT = 'spf-cost-profile/1';

/** Latencies that override @spf/machine's `defaultCostModel` (ns; only the entries given are changed). */
export type CostOverrides = Readonly<Partial<Record<keyof CostModel, number>>>;

/**
 * A cost profile: which of @spf/machine's cost-model entries to override, and with what (the model's table
 * itself stays the one definition: a profile holds only the entries it changes). `spf calibrate` writes one
 * from measurements on the host; a profile can also be written by hand (one cost changed for a sensitivity
 * run). Schema (JSON):
 *
 * ```json
 * {
 *   "format": "spf-cost-profile/1",          // required, exactly this
 *   "name": "calibrated on host-1",          // required, non-empty: the reports print it
 *   "cost": { "zeroPage": 190, "lineTransfer": 210 },  // required: keys of CostModel, finite numbers >= 0
 *   "created": "2026-12-02T16:00:00.000Z",   // optional ISO date
 *   "host": { ... },                         // optional: free-form description of where it was measured
 *   "measured": { "anon_fault_ns": 1800 }    // optional: raw figures (numbers), for the record
 * }
 * ```
 */
export interface CostProfile {
  readonly format: typeof COST_PROFILE_FORMAT;
  readonly name: string;
  readonly cost: CostOverrides;
  readonly created?: string;
  readonly host?: Readonly<Record<string, unknown>>;
  readonly measured?: Readonly<Record<string, number>>;
}

/** A cost profile that cannot be used: says which file and what is wrong. */
export class CostProfileError extends Error {
  override readonly name = 'CostProfileError';
}

const COST_KEYS = Object.keys(defaultCostModel) as (keyof CostModel)[];

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Checks that `text` (the contents of `path`) is a cost profile and returns it. Every problem is a
 * {@link CostProfileError} naming the file, the field and what to do: not JSON, a wrong `format`, no `name`,
 * a `cost` entry that is not a cost-model key (the known keys are listed) or not a finite number >= 0,
 * `cpusPerSocket` below 1, `measured` values that are not numbers.
 */
export function parseCostProfile(text: string, path: string): CostProfile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new CostProfileError(
      `${path} is not JSON (${(e as Error).message}); pass a profile written by spf calibrate`,
    );
  }
  const bad = (what: string) => new CostProfileError(`${path} is not a usable cost profile: ${what}`);
  if (!isObj(data)) throw bad('the top level is not an object');
  if (data.format !== COST_PROFILE_FORMAT) {
    throw bad(`"format" is ${JSON.stringify(data.format)}, expected ${JSON.stringify(COST_PROFILE_FORMAT)}`);
  }
  if (typeof data.name !== 'string' || data.name.trim() === '')
    throw bad('"name" must be a non-empty string (the reports print it)');
  if (!isObj(data.cost)) throw bad('"cost" must be an object of cost-model entries (it may be empty: {})');
  for (const [k, v] of Object.entries(data.cost)) {
    if (!(COST_KEYS as string[]).includes(k)) {
      throw bad(
        `"cost.${k}" is not an entry of @spf/machine's cost model; the entries are ${COST_KEYS.join(', ')}`,
      );
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw bad(`"cost.${k}" must be a finite number of nanoseconds >= 0, got ${JSON.stringify(v)}`);
    }
    if (k === 'cpusPerSocket' && v < 1) throw bad('"cost.cpusPerSocket" must be at least 1');
  }
  if (data.created !== undefined && typeof data.created !== 'string') throw bad('"created" must be a string');
  if (data.host !== undefined && !isObj(data.host)) throw bad('"host" must be an object');
  if (data.measured !== undefined) {
    if (!isObj(data.measured)) throw bad('"measured" must be an object of numbers');
    for (const [k, v] of Object.entries(data.measured)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw bad(`"measured.${k}" must be a finite number, got ${JSON.stringify(v)}`);
      }
    }
  }
  return data as unknown as CostProfile;
}

/** Reads and checks a cost profile file ({@link parseCostProfile}). */
export function readCostProfile(path: string): CostProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CostProfileError(
      `cannot read the cost profile ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; write one with spf calibrate --out ${path}`,
    );
  }
  return parseCostProfile(text, path);
}

/** A profile and the file it came from, as a result file records it. */
export interface ProfileUse {
  readonly name: string;
  readonly path: string;
  readonly cost: CostOverrides;
}

/** What the reports print as the cost model: `default` or `profile "<name>" (<path>)`. */
export function costModelLabel(use: ProfileUse | null | undefined): string {
  return use ? `profile ${JSON.stringify(use.name)} (${use.path})` : 'default';
}

/**
 * The configurations with the profile's overrides applied to every one (`params.cost`; an experiment's own
 * `cost` entries, if any, win). Without a profile, the configurations unchanged.
 */
export function applyCostProfile(
  configs: readonly RunConfig[],
  use: ProfileUse | null | undefined,
): RunConfig[] {
  if (!use || Object.keys(use.cost).length === 0) return [...configs];
  return configs.map((c) => ({ ...c, params: { ...c.params, cost: { ...use.cost, ...c.params.cost } } }));
}
