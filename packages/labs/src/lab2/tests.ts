import { type RwsemPaths, RwSemaphore, SeqCount, type SeqcountReadSide } from '@spf/locks';
import { Cell, cpuRelax, delay, type ExploreOptions, kassert, type Machine, runSync } from '@spf/machine';
import { traceStudent } from '../debug-probe.js';
import { TestFailure } from '../lab-errors.js';
import type { LabTest, TestContext } from '../lab.js';
import { watchCells } from '../schedule-debug.js';
import { watchRwsem, watchSeqcount } from './debug-watch.js';
import { checkSchedules } from './explorer-check.js';

/** The student's export `name` of `file`, checked to be an object with the given generator methods. */
function impl<T>(ctx: TestContext, file: string, name: string, methods: readonly string[]): T {
  const mod = ctx.student[file];
  const v = mod?.[name] as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object') throw new TestFailure(`${file} must export an object named '${name}'`);
  for (const m of methods) {
    if (typeof v[m] !== 'function')
      throw new TestFailure(`${file}: ${name}.${m} must be a generator function`);
  }
  return traceStudent(v, methods) as T;
}

const reader = (ctx: TestContext) =>
  impl<SeqcountReadSide>(ctx, 'seqcount.ts', 'seqcountReadSide', ['readBegin', 'readRetry']);
const paths = (ctx: TestContext) =>
  impl<RwsemPaths>(ctx, 'rwsem.ts', 'rwsemPaths', ['downRead', 'upRead', 'downWrite', 'upWrite']);

/** A rw_semaphore routed through the student's paths (lockdep off: each schedule starts clean). */
const studentSem = (p: RwsemPaths, name = 'sem') => new RwSemaphore(name, { paths: p, lockdep: false });

function expectEq<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected)
    throw new TestFailure(what, { expected: String(expected), actual: String(actual) });
}

/**
 * How each explored test searches, by test id. Each known-buggy variant must be caught at (nearly) every
 * seed of its budget, not only at the one fixed here: `bench/budget-robustness.ts` measures it (README).
 */
export const LAB2_SEARCH: Record<string, ExploreOptions> = {
  'seq-begin-waits': { policy: 'pct', runs: 150, seed: 7 },
  'seq-readers-notice-writers': { policy: 'pct', runs: 300, seed: 3 },
  'rwsem-readers-share': { policy: 'random', runs: 30, seed: 5 },
  'rwsem-mutual-exclusion': { policy: 'pct', runs: 250, seed: 11 },
  'rwsem-up-read-wakes-writer': { policy: 'random', runs: 40, seed: 2 },
  'rwsem-readers-woken-together': { policy: 'random', runs: 30, seed: 17 },
  'rwsem-atomic-reader-count': { policy: 'pct', runs: 250, seed: 13 },
};

/** Lab 2's graded tests (100 points). */
export const lab2Tests: readonly LabTest[] = [
  {
    id: 'seq-uncontended',
    title: 'seqcount: begin and retry on one CPU',
    points: 5,
    category: 'functionality',
    description:
      'With no writer around, readBegin returns the even sequence and readRetry says false; after a write section, readRetry says true.',
    run(ctx) {
      const sc = new SeqCount('seq', { reader: reader(ctx) });
      const s0 = runSync(sc.readBegin());
      expectEq(s0, 0, 'readBegin on a fresh seqcount returns its sequence');
      expectEq(runSync(sc.readRetry(s0)), false, 'readRetry with no writer in between');
      runSync(sc.writeBegin());
      runSync(sc.writeEnd());
      expectEq(runSync(sc.readRetry(s0)), true, 'readRetry after a complete write section');
      expectEq(runSync(sc.readBegin()), 2, 'readBegin after one write section returns 2');
    },
  },
  {
    id: 'seq-begin-waits',
    title: 'seqcount: readBegin waits for the writer',
    points: 10,
    category: 'concurrency',
    parent: 'seq-uncontended',
    timeoutMs: 8000,
    description:
      'readBegin must never return an odd sequence: while a writer is inside, the reader waits (spinning with cpuRelax).',
    run(ctx) {
      const r = reader(ctx);
      checkSchedules(
        {
          cpus: 2,
          maxSteps: 20_000,
          setup(m: Machine) {
            const sc = new SeqCount('seq', { reader: r });
            const data = new Cell(0, 'data');
            watchSeqcount('seq', sc);
            watchCells({ data });
            m.spawn(1, 'writer', function* () {
              yield* sc.writeBegin();
              yield* data.store(1);
              yield* sc.writeEnd();
            });
            m.spawn(0, 'reader', function* () {
              const s = yield* sc.readBegin();
              kassert((s & 1) === 0, `readBegin returned ${s}, an odd sequence (a writer was inside)`);
            });
          },
        },
        LAB2_SEARCH['seq-begin-waits'],
        'readBegin returns an even sequence',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'seq-readers-notice-writers',
    title: 'seqcount: readers notice concurrent writers',
    points: 15,
    category: 'concurrency',
    parent: 'seq-uncontended',
    timeoutMs: 8000,
    description:
      'A reader looping on readBegin/readRetry never accepts a torn read: the writer keeps x === y, so a read of x !== y must be retried.',
    run(ctx) {
      const r = reader(ctx);
      checkSchedules(
        {
          cpus: 2,
          maxSteps: 50_000,
          setup(m: Machine) {
            const sc = new SeqCount('seq', { reader: r });
            const x = new Cell(0, 'data');
            const y = new Cell(0, 'data2');
            watchSeqcount('seq', sc);
            watchCells({ x, y });
            m.spawn(1, 'writer', function* () {
              for (let i = 1; i <= 2; i++) {
                yield* sc.writeBegin();
                yield* x.store(i);
                yield* y.store(i);
                yield* sc.writeEnd();
              }
            });
            m.spawn(0, 'reader', function* () {
              for (let n = 0; n < 2; n++) {
                let a: number;
                let b: number;
                let s: number;
                do {
                  s = yield* sc.readBegin();
                  a = yield* x.load();
                  b = yield* y.load();
                } while (yield* sc.readRetry(s));
                kassert(a === b, `the reader accepted a torn read: x=${a}, y=${b} (sequence ${s} at begin)`);
              }
            });
          },
        },
        LAB2_SEARCH['seq-readers-notice-writers'],
        'a reader never accepts x !== y',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-uncontended',
    title: 'rwsem: lock and unlock on one CPU',
    points: 5,
    category: 'functionality',
    description:
      'down_read/up_read, down_write/up_write and two nested read holds work with nobody else around; the count is non-zero while the lock is held and back to 0 (free) after each release.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 1,
          maxSteps: 10_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            const held = (what: string) =>
              kassert(
                sem.count.value !== 0,
                `the count is 0 while ${what}: your paths did not record the hold`,
              );
            const free = (what: string) =>
              kassert(sem.count.value === 0, `the count is ${sem.count.value} after ${what}; 0 means free`);
            m.spawn(0, 'solo', function* () {
              yield* sem.downRead();
              held('one reader holds the lock');
              yield* sem.upRead();
              free('up_read');
              yield* sem.downWrite();
              held('a writer holds the lock');
              yield* sem.upWrite();
              free('up_write');
              yield* sem.downRead();
              yield* sem.downRead();
              yield* sem.upRead();
              held('one of two readers is still inside');
              yield* sem.upRead();
              free('both up_reads');
              yield* sem.downWrite();
              yield* sem.upWrite();
              free('the last up_write');
            });
            return () => kassert(!sem.isLocked(), 'the lock is still held at the end');
          },
        },
        { policy: 'timed' },
        'uncontended lock and unlock complete',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-readers-share',
    title: 'rwsem: readers share the lock',
    points: 5,
    category: 'concurrency',
    parent: 'rwsem-uncontended',
    timeoutMs: 8000,
    description:
      'Two readers can hold the lock at the same time: each waits inside its read section until the other is inside too.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 2,
          maxSteps: 5_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            const inside = [false, false];
            for (const cpu of [0, 1]) {
              m.spawn(cpu, `reader${cpu}`, function* () {
                yield* sem.downRead();
                inside[cpu] = true;
                while (!inside[1 - cpu]) yield* cpuRelax('waiting for the other reader');
                yield* sem.upRead();
              });
            }
          },
        },
        LAB2_SEARCH['rwsem-readers-share'],
        'both readers are inside at once',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-mutual-exclusion',
    title: 'rwsem: writers exclude everyone',
    points: 15,
    category: 'concurrency',
    parent: 'rwsem-uncontended',
    timeoutMs: 8000,
    description:
      'Two writers and a reader on three CPUs: a writer is never inside together with anyone else, and no increment made under the write lock is lost.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 3,
          maxSteps: 50_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            const counter = new Cell(0, 'counter');
            watchCells({ counter });
            let writers = 0;
            let readers = 0;
            for (const cpu of [0, 1]) {
              m.spawn(cpu, `writer${cpu}`, function* () {
                for (let i = 0; i < 2; i++) {
                  yield* sem.downWrite();
                  writers++;
                  kassert(
                    writers === 1 && readers === 0,
                    `writer${cpu} got the lock while ${writers - 1} other writer(s) and ${readers} reader(s) were inside`,
                  );
                  const v = yield* counter.load();
                  yield* counter.store(v + 1);
                  writers--;
                  yield* sem.upWrite();
                }
              });
            }
            m.spawn(2, 'reader', function* () {
              for (let i = 0; i < 2; i++) {
                yield* sem.downRead();
                readers++;
                kassert(writers === 0, 'the reader got the lock while a writer was inside');
                const a = yield* counter.load();
                const b = yield* counter.load();
                kassert(a === b, `a writer changed the counter (${a} -> ${b}) while a reader held the lock`);
                readers--;
                yield* sem.upRead();
              }
            });
            return () =>
              kassert(counter.value === 4, `counter is ${counter.value}, expected 4: increments were lost`);
          },
        },
        LAB2_SEARCH['rwsem-mutual-exclusion'],
        'mutual exclusion holds',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-up-read-wakes-writer',
    title: 'rwsem: the last reader lets the writer in',
    points: 15,
    category: 'concurrency',
    parent: 'rwsem-uncontended',
    timeoutMs: 8000,
    description:
      'A writer that went to sleep behind a reader is handed the lock and woken when that reader calls up_read.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 2,
          maxSteps: 20_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            let readerIn = false;
            let writerDone = false;
            m.spawn(0, 'reader', function* () {
              yield* sem.downRead();
              readerIn = true;
              yield* delay(2000, 'read section');
              yield* sem.upRead();
            });
            m.spawn(1, 'writer', function* () {
              while (!readerIn) yield* cpuRelax('waiting for the reader to be inside');
              yield* sem.downWrite();
              writerDone = true;
              yield* sem.upWrite();
            });
            return () => kassert(writerDone, 'the writer never got the lock');
          },
        },
        LAB2_SEARCH['rwsem-up-read-wakes-writer'],
        'the writer gets the lock after the reader leaves',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-readers-woken-together',
    title: 'rwsem: readers queued behind a writer enter together',
    points: 5,
    category: 'concurrency',
    parent: 'rwsem-uncontended',
    timeoutMs: 8000,
    description:
      'Two readers that queued behind a writer are both let in when it calls up_write: the lock is shared again, not handed to one reader at a time.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 3,
          maxSteps: 20_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            let writerIn = false;
            const inside = [false, false];
            m.spawn(0, 'writer', function* () {
              yield* sem.downWrite();
              writerIn = true;
              yield* delay(2000, 'write section');
              yield* sem.upWrite();
            });
            for (const r of [0, 1]) {
              m.spawn(r + 1, `reader${r}`, function* () {
                while (!writerIn) yield* cpuRelax('waiting for the writer to be inside');
                yield* sem.downRead();
                inside[r] = true;
                while (!inside[1 - r]) yield* cpuRelax('waiting for the other reader');
                yield* sem.upRead();
              });
            }
            return () => kassert(inside[0] && inside[1], 'the readers never held the lock together');
          },
        },
        LAB2_SEARCH['rwsem-readers-woken-together'],
        'both queued readers are inside at once after up_write',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-atomic-reader-count',
    title: 'rwsem: no lost reader-count updates',
    points: 15,
    category: 'concurrency',
    parent: 'rwsem-uncontended',
    timeoutMs: 8000,
    description:
      'Three readers come and go while a writer takes the lock; afterwards the writer can take it again, so the count went back to free.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 4,
          maxSteps: 50_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            let readersDone = 0;
            let final = false;
            for (const cpu of [0, 1, 2]) {
              m.spawn(cpu, `reader${cpu}`, function* () {
                for (let i = 0; i < 2; i++) {
                  yield* sem.downRead();
                  yield* sem.upRead();
                }
                readersDone++;
              });
            }
            m.spawn(3, 'writer', function* () {
              yield* sem.downWrite();
              yield* sem.upWrite();
              while (readersDone < 3) yield* cpuRelax('waiting for the readers to finish');
              yield* sem.downWrite();
              final = true;
              yield* sem.upWrite();
            });
            return () => kassert(final, 'the writer could not take the lock after every reader left');
          },
        },
        LAB2_SEARCH['rwsem-atomic-reader-count'],
        'the lock is free again after all readers left',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'rwsem-no-writer-starvation',
    title: 'rwsem: new readers queue behind a waiting writer',
    points: 10,
    category: 'concurrency',
    parent: 'rwsem-mutual-exclusion',
    timeoutMs: 8000,
    description:
      'Two readers take turns so that one always holds the lock; a writer that arrives must get it after the readers already inside, not after all readers are done.',
    run(ctx) {
      const p = paths(ctx);
      checkSchedules(
        {
          cpus: 3,
          maxSteps: 100_000,
          setup(m: Machine) {
            const sem = studentSem(p);
            watchRwsem('sem', sem);
            let writerDone = false;
            let entries = 0;
            let entriesWhileWaiting = -1;
            for (const cpu of [0, 1]) {
              m.spawn(cpu, `reader${cpu}`, function* () {
                if (cpu === 1) yield* delay(500, 'stagger');
                for (let i = 0; i < 40 && !writerDone; i++) {
                  yield* sem.downRead();
                  entries++;
                  yield* delay(1000, 'read section');
                  yield* sem.upRead();
                  yield* delay(50, 'between reads');
                }
              });
            }
            m.spawn(2, 'writer', function* () {
              yield* delay(300, 'arrive');
              const before = entries;
              yield* sem.downWrite();
              entriesWhileWaiting = entries - before;
              writerDone = true;
              yield* sem.upWrite();
            });
            return () =>
              kassert(
                entriesWhileWaiting >= 0 && entriesWhileWaiting <= 3,
                entriesWhileWaiting < 0
                  ? 'the writer never got the lock'
                  : `readers entered ${entriesWhileWaiting} times while the writer waited (at most 3 may: those already on their way in)`,
              );
          },
        },
        { policy: 'timed' },
        'a waiting writer is not starved by arriving readers',
        { schedule: ctx.schedule },
      );
    },
  },
];
