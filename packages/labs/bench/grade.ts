// Host-speed cost of grading: transpile + load + every test, per lab, for the reference solution and the
// starter. Run: npx tsx bench/grade.ts (or pnpm run bench). Prints figures; asserts nothing.
import { gradeSources } from '../src/grade.js';
import { labs } from '../src/registry.js';
import { referenceSources } from '../src/reference-solutions.js';
import { starterSources } from '../src/variants.js';

for (const lab of labs) {
  for (const [what, sources] of [
    ['reference', referenceSources(lab)],
    ['starter', starterSources(lab)],
  ] as const) {
    await gradeSources(lab, sources); // warm-up
    const runs = 5;
    const t0 = performance.now();
    let score = 0;
    for (let i = 0; i < runs; i++) score = (await gradeSources(lab, sources)).score;
    const ms = (performance.now() - t0) / runs;
    console.log(
      `${lab.id} ${what.padEnd(9)} score ${String(score).padStart(3)}/100  ${ms.toFixed(1)} ms per grading run`,
    );
  }
}
