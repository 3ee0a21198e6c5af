import { UnknownLabError } from './lab-errors.js';
import type { Lab } from './lab.js';
import { lab1 } from './lab1/lab1.js';
import { lab2 } from './lab2/lab2.js';
import { lab3 } from './lab3/lab3.js';
import { lab4 } from './lab4/lab4.js';
import { lab5 } from './lab5/lab5.js';
import { lab6 } from './lab6/lab6.js';
import { lab7 } from './lab7/lab7.js';

/** Every lab of the course, in course order. */
export const labs: readonly Lab[] = [lab1, lab2, lab3, lab4, lab5, lab6, lab7];

/** The lab with id `id`; throws {@link UnknownLabError} listing the known ids otherwise. */
export function getLab(id: string): Lab {
  const lab = labs.find((l) => l.id === id);
  if (!lab) throw new UnknownLabError(`no lab '${id}'; the labs are ${labs.map((l) => l.id).join(', ')}`);
  return lab;
}
