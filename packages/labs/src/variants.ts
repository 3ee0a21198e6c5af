import { LabDefinitionError } from './lab-errors.js';
import type { BuggyVariant, Lab } from './lab.js';
import type { Sources } from './grade.js';
import { referenceSources } from './reference-solutions.js';

/** The starter sources. */
export function starterSources(lab: Lab): Sources {
  return Object.fromEntries(lab.files.map((f) => [f.name, f.starter]));
}

/**
 * The sources of a known-buggy variant: the reference with the variant's patches applied. Throws
 * {@link LabDefinitionError} if a patch's text does not occur exactly once (the reference changed).
 */
export function variantSources(lab: Lab, variant: BuggyVariant | string): Sources {
  const v = typeof variant === 'string' ? lab.buggyVariants.find((b) => b.id === variant) : variant;
  if (!v) {
    const known = lab.buggyVariants.map((b) => b.id).join(', ');
    throw new LabDefinitionError(
      `lab '${lab.id}' has no buggy variant '${String(variant)}' (known: ${known})`,
    );
  }
  const sources: Record<string, string> = { ...referenceSources(lab) };
  let text = sources[v.file];
  for (const [from, to] of v.patches) {
    const n = text.split(from).length - 1;
    if (n !== 1) {
      throw new LabDefinitionError(
        `buggy variant '${v.id}' of lab '${lab.id}': the text ${JSON.stringify(from)} occurs ${n} times in ${v.file}; it must occur exactly once`,
      );
    }
    text = text.replace(from, () => to);
  }
  sources[v.file] = text;
  return sources;
}
