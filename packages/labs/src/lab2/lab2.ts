import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import { constantsOf } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab2Tests } from './tests.js';

/** Editor tab order: the seqcount first, it is the smaller half. */
const FILE_ORDER = ['seqcount.ts', 'rwsem.ts'];

/**
 * Lab 2: seqcount and rwsem. The student writes the seqcount read side and the rw_semaphore paths behind
 * @spf/locks' `SeqcountReadSide` and `RwsemPaths` injection points; tests explore interleavings.
 */
export const lab2: Lab = {
  id: 'lab2',
  title: 'Lab 2: seqcount and rwsem',
  version: 3,
  summary:
    'Implement the read side of a seqcount (begin and retry) and the four paths of a reader-writer semaphore (down/up for read and write). Graded under the explorer: mutual exclusion, readers sharing, wake-ups, no lost count updates, no writer starvation, and readers that notice concurrent writers. A failing test shows the schedule that broke it as a per-CPU timeline.',
  injection: {
    package: '@spf/locks',
    point:
      '`SeqcountReadSide` via `new SeqCount(name, { reader })` and `RwsemPaths` via `new RwSemaphore(name, { paths })` (src/lab-interfaces.ts)',
  },
  files: [...files].sort((a, b) => FILE_ORDER.indexOf(a.name) - FILE_ORDER.indexOf(b.name)),
  hints: [
    'readBegin: load the sequence; while it is odd a writer is inside, so spin (yield* cpuRelax()) and load it again. readRetry: load it once more and compare with start.',
    "For the rwsem, do each check-and-update right after one `yield* rmw(sem.count.line)`: nothing can run between that yield and your next one, so the check and the update are atomic. A separate load and store can lose another CPU's update.",
    'A task that cannot have the lock pushes { kind, granted: false, task } onto sem.waiters and sleeps with `yield* block(sem.waitQueue, () => me.granted)`. Whoever releases the lock sets granted on the waiters it lets in, updates the count for them, and calls wake().',
    'Writer starvation: if a new reader may enter whenever the count says "readers", a writer waiting behind a stream of readers never gets in. Let newcomers queue when anyone is already waiting.',
  ],
  tests: lab2Tests,
  buggyVariants: [
    {
      id: 'no-retry-loop',
      description:
        'readBegin takes the sequence once, even when it is odd (no loop waiting for the writer to finish).',
      file: 'seqcount.ts',
      patches: [
        [
          `    for (;;) {
      const seq = yield* s.sequence.load();
      if ((seq & 1) === 0) return seq;
      yield* cpuRelax(\`\${s.name}: writer inside\`);
    }`,
          `    void cpuRelax;
    return yield* s.sequence.load();`,
        ],
      ],
      mustFail: 'seq-readers-notice-writers',
    },
    {
      id: 'no-wakeup-in-up-read',
      description: 'up_read hands the lock to the waiting writer but never wakes it.',
      file: 'rwsem.ts',
      patches: [
        [
          'if (sem.count.value === 0 && grantHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);',
          'if (sem.count.value === 0) grantHead(sem);',
        ],
      ],
      mustFail: 'rwsem-up-read-wakes-writer',
    },
    {
      id: 'non-atomic-reader-count',
      description:
        'Readers update the count with a plain load and a later store, so two readers can lose an update.',
      file: 'rwsem.ts',
      patches: [
        [
          `    yield* rmw(sem.count.line);
    if (sem.count.value >= 0 && sem.waiters.length === 0) {
      sem.count.value += 1;
      return;
    }
    yield* queueAndSleep(sem, 'read', task);`,
          `    const seen = yield* sem.count.load();
    if (seen >= 0 && sem.waiters.length === 0) {
      yield* sem.count.store(seen + 1);
      return;
    }
    yield* queueAndSleep(sem, 'read', task);`,
        ],
        [
          `  *upRead(sem) {
    yield* rmw(sem.count.line);
    sem.count.value -= 1;`,
          `  *upRead(sem) {
    const seen = yield* sem.count.load();
    yield* sem.count.store(seen - 1);`,
        ],
      ],
      mustFail: 'rwsem-atomic-reader-count',
    },
    {
      id: 'reader-preference',
      description: 'A new reader enters whenever only readers hold the lock, even with a writer queued.',
      file: 'rwsem.ts',
      patches: [['if (sem.count.value >= 0 && sem.waiters.length === 0) {', 'if (sem.count.value >= 0) {']],
      mustFail: 'rwsem-no-writer-starvation',
    },
    {
      id: 'grants-one-reader',
      description:
        'Releasing hands the lock to one queued reader at a time, so readers that waited behind a writer no longer share it.',
      file: 'rwsem.ts',
      patches: [["if (head.kind === 'write') break;", 'break;']],
      mustFail: 'rwsem-readers-woken-together',
    },
    {
      id: 'writer-ignores-holders',
      description: 'down_write takes the lock whenever nobody is queued, even while it is held.',
      file: 'rwsem.ts',
      patches: [
        ['if (sem.count.value === 0 && sem.waiters.length === 0) {', 'if (sem.waiters.length === 0) {'],
      ],
      mustFail: 'rwsem-mutual-exclusion',
    },
  ],
  // @spf/locks holds working locks (RwSemaphore, SeqCount): only its constants may be imported. The machine
  // has no lock of its own, so all of it is allowed (the effects the paths are written with); its kernel
  // functions tell the schedule debugger which student line called them (only during a debug replay).
  modules: () => ({ '@spf/machine': probedNamespace(machine), '@spf/locks': constantsOf(locks) }),
};
