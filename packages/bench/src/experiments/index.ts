import type { Experiment } from '../experiment.js';
import { e1 } from './e1-retry.js';
import { e2 } from './e2-file-vmas.js';
import { e3 } from './e3-pgtable-alloc.js';
import { e4 } from './e4-pte-special.js';
import { e5 } from './e5-single-thread.js';
import { e6 } from './e6-range-lock.js';
import { e7 } from './e7-headline.js';
import { e8 } from './e8-vma-refcount.js';

export { E2_DESIGNS } from './e2-file-vmas.js';
export { e1, e2, e3, e4, e5, e6, e7, e8 };

/** Every experiment, in order. A new one joins with a module under src/experiments/ and one entry here. */
export const EXPERIMENTS: readonly Experiment[] = [e1, e2, e3, e4, e5, e6, e7, e8];

/** An experiment id that is not in {@link EXPERIMENTS}. */
export class UnknownExperimentError extends Error {
  override readonly name = 'UnknownExperimentError';
}

/** The experiment with id `id` (case-insensitive: `e7` or `E7`). */
export function experimentById(id: string): Experiment {
  const e = EXPERIMENTS.find((x) => x.id.toLowerCase() === id.toLowerCase());
  if (e === undefined) {
    throw new UnknownExperimentError(
      `unknown experiment ${JSON.stringify(id)}; choose one of ${EXPERIMENTS.map((x) => x.id).join(', ')} or all (spf bench list describes them)`,
    );
  }
  return e;
}
