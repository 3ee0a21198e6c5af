import { UnknownLabError } from './lab-errors.js';
import { reference as lab1 } from './lab1/reference.gen.js';
import { reference as lab2 } from './lab2/reference.gen.js';
import { reference as lab3 } from './lab3/reference.gen.js';
import { reference as lab4 } from './lab4/reference.gen.js';
import { reference as lab5 } from './lab5/reference.gen.js';
import { reference as lab6 } from './lab6/reference.gen.js';
import { reference as lab7 } from './lab7/reference.gen.js';
import type { Sources } from './worker-protocol.js';

/** Every lab's reference solution, file name to text (embedded from lab-files/<lab>/reference). */
const solutions: Readonly<Record<string, Sources>> = { lab1, lab2, lab3, lab4, lab5, lab6, lab7 };

/**
 * The reference solution's sources of a lab. Kept out of the lab definitions and the main entry so that a
 * bundle of the grader (the course's worker) or a page's lab outline never carries it; import it from
 * `@spf/labs/reference` where it is meant to be seen (the CLI's `--reference`, CI, a page after full marks).
 */
export function referenceSources(lab: { readonly id: string }): Sources {
  const s = solutions[lab.id];
  if (!s) throw new UnknownLabError(`no reference solution for lab '${lab.id}'`);
  return { ...s };
}
