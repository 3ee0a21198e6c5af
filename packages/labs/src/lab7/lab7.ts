import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import * as vma from '@spf/vma';
import { constantsOf } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab7Tests } from './tests.js';

/**
 * Lab 7: make it scale. The student writes the RSS counter of an mm (`RssCounter`, one of
 * `mm->rss_stat[]`) behind @spf/vma's `rssCounting` factory: first exact and correct under the explorer,
 * then fast enough that 32 CPUs faulting under per-VMA locks reach a threshold of faults per simulated
 * second. The starter is the shared atomic counter of old kernels, whose readers the student writes first.
 */
export const lab7: Lab = {
  id: 'lab7',
  title: 'Lab 7: make it scale (the RSS counter)',
  version: 1,
  summary:
    "Every page fault adds 1 to its process's RSS counter. Shared by all CPUs, that one counter caps the machine at 15.8 M faults per simulated second at 32 CPUs, even with per-VMA locks. Rewrite it as Linux 6.2's percpu_counter (per-CPU counts folded in batches under a lock; the cheap read and the exact sum), keep it exact under the explorer, and reach the threshold. Simulated time is deterministic: the performance grade is as reproducible as the correctness grade.",
  injection: {
    package: '@spf/vma',
    point:
      '`RssCounter` via `MmConfig.rssCounting` / `boot({ rssCounting })` (src/memory/mm-counter.ts): a factory the mm calls once per counter type; `add_mm_counter()`, `get_mm_counter()`, `get_mm_counter_sum()` and `check_mm()` go through it',
  },
  files: [...files],
  hints: [
    'Start with the readers of the starter, which is correct once they exist: read() and sum() both return the shared count (clamp read() at 0). That gets the correctness tests; the performance test then shows why Linux moved on.',
    "Give each CPU a counter of its own: Array.from({ length: nrCpus }, (_, cpu) => new Cell(0, info.name + '.counters[' + cpu + ']')). In add(), `const { cpu } = yield* self()` says which one is yours; a plain load and store of it costs a cache hit, and no other CPU writes it. Wrap the update in preemptDisable()/preemptEnable() as this_cpu_add() is.",
    'A per-CPU count alone makes read() useless (the shared count never moves). Fold: when your CPU count reaches the batch (max(32, 2 × nrCpus)) in either direction, add it to the shared count and take it off yours. That is percpu_counter_add_batch() in lib/percpu_counter.c.',
    "Two CPUs folding at once each load the shared count and store their sum: one fold is lost, and the explorer will find the schedule. Do the fold under a SpinLock from @spf/locks (lockIrqsave/unlockIrqrestore), with the count on the lock's line: new Cell(0, lock.line), as struct percpu_counter keeps them together.",
    'sum() adds the shared count and every CPU count. Take the same lock: otherwise a sum can see a fold half done (the shared count raised, the CPU count not yet lowered) and be off by a whole batch.',
  ],
  tests: lab7Tests,
  buggyVariants: [
    {
      id: 'never-folded',
      description:
        'Per-CPU counts that are never folded into the shared count: the sum is right, but get_mm_counter() reads 0 for ever.',
      file: 'percpu-counter.ts',
      patches: [['      if (c >= batch || c <= -batch) {', '      if (false) {']],
      mustFail: 'read-approximate',
    },
    {
      id: 'fold-not-atomic',
      description:
        'The fold adds to the shared count without the lock: two CPUs folding at once lose one fold (and sums see folds half done).',
      file: 'percpu-counter.ts',
      patches: [
        [
          `        const flags = yield* lock.lockIrqsave();
        yield* count.store((yield* count.load()) + c);
        yield* mine.store((yield* mine.load()) - (c - amount));
        yield* lock.unlockIrqrestore(flags);`,
          `        yield* count.store((yield* count.load()) + c);
        yield* mine.store((yield* mine.load()) - (c - amount));`,
        ],
      ],
      mustFail: 'concurrent-folds',
    },
    {
      id: 'sum-without-lock',
      description:
        "sum() adds up without the counter's lock: it can see a fold half done and be off by a batch.",
      file: 'percpu-counter.ts',
      patches: [
        [
          `      const flags = yield* lock.lockIrqsave();
      let ret = yield* count.load();
      for (const c of counters) ret += yield* c.load();
      yield* lock.unlockIrqrestore(flags);`,
          `      let ret = yield* count.load();
      for (const c of counters) ret += yield* c.load();`,
        ],
      ],
      mustFail: 'sum-during-folds',
    },
    {
      id: 'sum-ignores-percpu',
      description:
        'sum() returns the shared count alone, as get_mm_counter() does: /proc/self/status misses what the CPUs hold back (Linux before 6.16 showed that error).',
      file: 'percpu-counter.ts',
      patches: [['      for (const c of counters) ret += yield* c.load();\n', '']],
      mustFail: 'status-exact',
    },
    {
      id: 'read-negative',
      description:
        'read() returns the shared count as it is (percpu_counter_read() instead of _positive()): it goes negative when one CPU unmaps what another faulted in.',
      file: 'percpu-counter.ts',
      patches: [['      return v < 0 ? 0 : v;', '      return v;']],
      mustFail: 'read-approximate',
    },
    {
      id: 'one-shared-line',
      description:
        "Correct, but every add folds at once (a batch of 1): each fault writes the line all CPUs share, as the starter's atomic counter does. Exact, and too slow at 32 CPUs.",
      file: 'percpu-counter.ts',
      patches: [['  return Math.max(32, 2 * nrCpus);', '  return Math.min(1, nrCpus);']],
      mustFail: 'scales-32',
    },
  ],
  // No allowed package holds an RSS counter: the machine (cells, lines, self, preemption) and @spf/locks
  // (the spinlock) are allowed whole; @spf/vma only for its constants and types (the built-in counter models
  // and the mm are not the student's to call).
  modules: () => ({
    '@spf/machine': probedNamespace(machine),
    '@spf/locks': locks,
    '@spf/vma': constantsOf(vma),
  }),
};
