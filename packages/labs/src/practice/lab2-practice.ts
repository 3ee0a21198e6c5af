import { RwSemaphore, SeqCount } from '@spf/locks';
import {
  AtomicCell,
  type Machine,
  Prng,
  random,
  runScenario,
  type Scenario,
  type TraceEvent,
} from '@spf/machine';
import { checkPracticeSeed, type PracticeExercise } from './practice.js';

/** The interleaving as numbered lines, runs of one CPU's steps folded into one line. */
function interleaving(trace: readonly TraceEvent[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < trace.length) {
    const e = trace[i];
    let j = i;
    const what: string[] = [];
    while (j < trace.length && trace[j].cpu === e.cpu && trace[j].task === e.task) {
      const t = trace[j];
      what.push(`${t.kind}${t.label ? ` ${t.label}` : ''}`);
      j++;
    }
    out.push(`  ${String(out.length + 1).padStart(2)}. CPU ${e.cpu} (${e.task}): ${what.join(', ')}`);
    i = j;
  }
  return out;
}

/**
 * A seqcount interleaving: a writer (CPU 1) updates x and y inside a write section while a reader (CPU 0)
 * reads them between read_seqcount_begin() and read_seqcount_retry(), once, under a random schedule.
 */
function seqcountExercise(seed: number, rng: Prng): PracticeExercise {
  const seen = { begin: -1, x: -1, y: -1, retry: false };
  const writes = 1 + rng.below(2);
  const scenario: Scenario = {
    cpus: 2,
    maxSteps: 10_000,
    setup(m: Machine) {
      const sc = new SeqCount('seq');
      const x = new AtomicCell(0, 'x');
      const y = new AtomicCell(0, 'y');
      m.spawn(1, 'writer', function* () {
        for (let k = 1; k <= writes; k++) {
          yield* sc.writeBegin();
          yield* x.store(k);
          yield* y.store(k);
          yield* sc.writeEnd();
        }
      });
      m.spawn(0, 'reader', function* () {
        seen.begin = yield* sc.readBegin();
        seen.x = yield* x.load();
        seen.y = yield* y.load();
        seen.retry = yield* sc.readRetry(seen.begin);
      });
    },
  };
  const run = runScenario(scenario, random(seed), { trace: true });
  return {
    lab: 'lab2',
    seed,
    title: 'Lab 2 practice: predict a seqcount interleaving',
    question: [
      `CPU 1 (writer), ${writes} time${writes > 1 ? 's' : ''} (k = 1${writes > 1 ? ', 2' : ''}): write_seqcount_begin(seq); x = k; y = k; write_seqcount_end(seq)`,
      'CPU 0 (reader), once: s = read_seqcount_begin(seq); a = x; b = y; r = read_seqcount_retry(seq, s)',
      'seq, x and y start at 0. read_seqcount_begin spins while the sequence is odd. The machine ran the steps',
      'in this order (each line: one CPU running some steps in a row; the label is the memory line touched):',
      ...interleaving(run.trace ?? []),
      '',
      'Question: what are s, a and b, and does read_seqcount_retry say the reader must retry?',
    ],
    answer: [
      `s = ${seen.begin}, a = x = ${seen.x}, b = y = ${seen.y}`,
      `read_seqcount_retry returns ${seen.retry}: ${seen.retry ? 'a writer ran since s was read, so the read is retried' : 'no writer ran in between, so a and b are consistent'}`,
    ],
    facts: {
      s: String(seen.begin),
      a: String(seen.x),
      b: String(seen.y),
      retry: String(seen.retry),
      schedule: run.schedule,
    },
  };
}

/**
 * An rw_semaphore interleaving: two readers and a writer (the kernel's rwsem of @spf/locks, with
 * optimistic spinning off) each take the lock once under a random schedule.
 */
function rwsemExercise(seed: number): PracticeExercise {
  const order: string[] = [];
  const slept = new Set<string>();
  const scenario: Scenario = {
    cpus: 3,
    maxSteps: 20_000,
    setup(m: Machine) {
      const sem = new RwSemaphore('sem', { optimisticSpin: false, lockdep: false });
      const take = (name: string, write: boolean) =>
        function* () {
          if (write) yield* sem.downWrite();
          else yield* sem.downRead();
          order.push(name);
          if (write) yield* sem.upWrite();
          else yield* sem.upRead();
        };
      m.spawn(0, 'reader0', take('reader0', false));
      m.spawn(1, 'writer', take('writer', true));
      m.spawn(2, 'reader2', take('reader2', false));
    },
  };
  const run = runScenario(scenario, random(seed), { trace: true });
  for (const e of run.trace ?? []) if (e.kind === 'block') slept.add(e.task);
  return {
    lab: 'lab2',
    seed,
    title: 'Lab 2 practice: predict an rw_semaphore interleaving',
    question: [
      'CPU 0 (reader0) and CPU 2 (reader2): down_read(sem); up_read(sem).   CPU 1 (writer): down_write(sem); up_write(sem).',
      "The semaphore is the kernel's (kernel/locking/rwsem.c as @spf/locks models it, no optimistic spinning):",
      'a reader adds to the count and queues if a writer holds it or waiters are queued; a writer takes it only',
      'when free. The machine ran the steps in this order (the label is the memory line or wait queue touched):',
      ...interleaving(run.trace ?? []),
      '',
      'Question: in which order did the three tasks get the lock, and which of them had to sleep?',
    ],
    answer: [`order: ${order.join(', ')}`, `slept: ${slept.size ? [...slept].sort().join(', ') : 'nobody'}`],
    facts: { order: order.join(','), slept: [...slept].sort().join(','), schedule: run.schedule },
  };
}

/**
 * A Lab 2 practice exercise: a random interleaving of a seqcount reader and writer, or of an rwsem's two
 * readers and writer, to predict. The interleaving and the answers come from one run of the machine
 * under the `random(seed)` policy with the kernel's own locks.
 */
export function lab2Practice(seed: number): PracticeExercise {
  checkPracticeSeed(seed);
  const rng = new Prng(seed ^ 0x1ab2);
  return rng.below(2) === 0 ? seqcountExercise(seed, rng) : rwsemExercise(seed);
}
