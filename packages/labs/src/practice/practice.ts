/**
 * A practice exercise (OSTEP's homework-simulator style: `-s seed` for a fresh exercise, `-c` for the
 * answers): a question to work out by hand, and answers computed by running the simulator on the same
 * state, never written by hand. The same lab and seed always give the same exercise.
 */
export type PracticeExercise = {
  readonly lab: string;
  readonly seed: number;
  readonly title: string;
  /** The state and the question, as lines of text. */
  readonly question: readonly string[];
  /** The answers, as lines of text (computed by the simulator). */
  readonly answer: readonly string[];
  /** The answer in a form tests and the page compare with (for example the walk's result). */
  readonly facts: Readonly<Record<string, string>>;
};

/** A bad practice request (unknown lab, a seed that is not a whole number from 0 to 2^32 - 1). */
export class PracticeError extends Error {
  override name = 'PracticeError';
}

/** Checks a practice seed: a whole number from 0 to 2^32 - 1. */
export function checkPracticeSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new PracticeError(`the seed must be a whole number from 0 to 4294967295 (got ${seed})`);
}

/** The exercise as the CLI prints it: the question, then (with `answers`) the answers. */
export function formatExercise(ex: PracticeExercise, answers: boolean): string {
  const lines = [`${ex.title} (${ex.lab}, seed ${ex.seed})`, '', ...ex.question];
  if (answers) lines.push('', 'Answers (computed by the simulator):', ...ex.answer.map((l) => `  ${l}`));
  else lines.push('', `Work it out, then check with -c (the same seed shows the answers).`);
  return lines.join('\n');
}
