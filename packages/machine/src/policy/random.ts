import { MachineConfigError } from '../errors.js';
import { Prng } from '../prng.js';
import type { Policy } from './policy.js';

/** Picks uniformly among the enabled CPUs at every step, from a seeded PRNG. */
export function random(seed: number): Policy {
  checkSeed(seed);
  let rng = new Prng(seed);
  return {
    name: `random(seed=${seed})`,
    start() {
      rng = new Prng(seed);
    },
    choose(enabled: Int32Array, count: number): number {
      return enabled[count === 1 ? 0 : rng.below(count)];
    },
  };
}

export function checkSeed(seed: unknown): asserts seed is number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new MachineConfigError(`a seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
}
