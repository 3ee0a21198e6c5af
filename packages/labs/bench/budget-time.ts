// Host time of grading the reference with the explored budgets before `bench/budget-robustness.ts` sized
// them and with the current ones, alternately in one process (so that both see the same host load).
// Run: npx tsx bench/budget-time.ts lab2 lab4 lab5. Prints figures; asserts nothing.
import type { ExploreOptions } from '@spf/machine';
import { gradeSources } from '../src/grade.js';
import { LAB2_SEARCH } from '../src/lab2/tests.js';
import { pctSearch } from '../src/lab3/kernel-harness.js';
import { LAB4_SEARCH } from '../src/lab4/tests.js';
import { LAB5_SEARCH } from '../src/lab5/tests.js';
import { getLab } from '../src/registry.js';
import { referenceSources } from '../src/reference-solutions.js';
const OLD: Record<string, [Record<string, ExploreOptions>, Record<string, ExploreOptions>]> = {
  lab2: [LAB2_SEARCH, { 'rwsem-atomic-reader-count': { policy: 'pct', runs: 250, seed: 13 } }],
  lab4: [
    LAB4_SEARCH,
    {
      'spec-vs-munmap': pctSearch(20, 2, 7),
      'spec-vs-mprotect': pctSearch(20, 3, 4),
      'spec-vs-mremap': pctSearch(15, 3, 1),
      'spec-vs-cow-flush': pctSearch(10, 3, 1),
    },
  ],
  lab5: [
    LAB5_SEARCH,
    {
      'pervma-vs-mprotect': pctSearch(10, 3, 1),
      'pervma-vs-munmap': pctSearch(10, 3, 4),
      'pervma-vs-mremap': pctSearch(10, 3, 9),
      'pervma-vs-split': pctSearch(8, 3, 1),
      'pervma-vs-fork': pctSearch(10, 3, 6),
    },
  ],
};
for (const id of process.argv.slice(2)) {
  const lab = getLab(id);
  const [rec, old] = OLD[id];
  const now = { ...rec };
  const t = { old: 0, now: 0 };
  await gradeSources(lab, referenceSources(lab));
  for (let i = 0; i < 3; i++) {
    for (const which of ['old', 'now'] as const) {
      Object.assign(rec, which === 'old' ? old : now);
      const t0 = performance.now();
      await gradeSources(lab, referenceSources(lab));
      t[which] += performance.now() - t0;
    }
  }
  Object.assign(rec, now);
  console.log(
    id,
    `old budgets ${(t.old / 3000).toFixed(2)} s, new ${(t.now / 3000).toFixed(2)} s per grading of the reference`,
  );
}
