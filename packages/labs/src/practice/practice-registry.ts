import { lab1Practice } from './lab1-practice.js';
import { lab2Practice } from './lab2-practice.js';
import { type PracticeExercise, PracticeError } from './practice.js';

/** The practice generators, by lab id. */
export const practiceGenerators: Readonly<Record<string, (seed: number) => PracticeExercise>> = {
  lab1: lab1Practice,
  lab2: lab2Practice,
};

/** A practice exercise of `lab` for `seed`; throws {@link PracticeError} for an unknown lab or a bad seed. */
export function practiceExercise(lab: string, seed: number): PracticeExercise {
  const gen = Object.hasOwn(practiceGenerators, lab) ? practiceGenerators[lab] : undefined;
  if (!gen)
    throw new PracticeError(
      `no practice for '${lab}'; there is practice for ${Object.keys(practiceGenerators).join(', ')}`,
    );
  return gen(seed);
}
