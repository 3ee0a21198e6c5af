/**
 * Timed-policy scaling of the read sides and a spinlock section, 1 to 128 CPUs.
 * Run: npx tsx --conditions=@spf/source bench/scaling.ts   (or `pnpm bench` in packages/locks)
 * Prints a Markdown table of throughput in million operations per simulated second.
 */
import { Cell, delay, type Kernel, Machine, MemoryLine, now, read } from '@spf/machine';
import { defaultLockdep, Rcu, RwSemaphore, SeqLock, SpinLock } from '../src/index.js';

defaultLockdep.enabled = false;

const CPUS = [1, 2, 4, 8, 16, 32, 64, 128];
/** Each CPU runs sections back to back for this much simulated time. */
const WINDOW_NS = 100_000;
const WRITER_PERIOD_NS = 10_000;

type Bench = { name: string; run(cpus: number): number };

/**
 * Runs `body` back to back on each of `cpus` CPUs until the simulated window closes; returns million
 * completed sections per simulated second. `extraCpus` are added for helpers spawned by `after`.
 */
function perCpu(
  cpus: number,
  extraCpus: number,
  setup: (m: Machine) => (cpu: number) => Kernel<void>,
  after?: (m: Machine, done: () => boolean) => void,
): number {
  const m = new Machine({ cpus: cpus + extraCpus, maxSteps: 500_000_000 });
  const body = setup(m);
  let finished = 0;
  let ops = 0;
  for (let c = 0; c < cpus; c++) {
    m.spawn(c, `w${c}`, function* () {
      while ((yield* now()) < WINDOW_NS) {
        yield* body(c);
        ops++;
      }
      finished++;
    });
  }
  after?.(m, () => finished === cpus);
  const r = m.run();
  if (r.failure) throw new Error(`${r.failure.kind}: ${r.failure.message}`);
  return (ops / WINDOW_NS) * 1e3;
}

const benches: Bench[] = [
  {
    name: 'rwsem down_read/up_read',
    run: (cpus) =>
      perCpu(cpus, 0, () => {
        const sem = new RwSemaphore('mmap_lock', { lockdep: false });
        const data = new MemoryLine('data');
        return function* () {
          yield* sem.downRead();
          yield* read(data);
          yield* sem.upRead();
        };
      }),
  },
  {
    name: 'spinlock section',
    run: (cpus) =>
      perCpu(cpus, 0, () => {
        const lock = new SpinLock('lock', { lockdep: false });
        const data = new Cell(0, 'data');
        return function* () {
          yield* lock.lock();
          const v = yield* data.load();
          yield* data.store(v + 1);
          yield* lock.unlock();
        };
      }),
  },
  {
    name: `seqcount read (writer every ${WRITER_PERIOD_NS / 1000} us)`,
    run: (cpus) => {
      const sl = new SeqLock('seq', { lockdep: false });
      const data = new Cell(0, new MemoryLine('data'));
      return perCpu(
        cpus,
        1,
        () =>
          function* () {
            let seq: number;
            do {
              seq = yield* sl.readSeqbegin();
              yield* data.load();
            } while (yield* sl.readSeqretry(seq));
          },
        (m, done) => {
          m.spawn(cpus, 'writer', function* () {
            for (;;) {
              yield* delay(WRITER_PERIOD_NS);
              if (done() || (yield* now()) >= WINDOW_NS) break;
              yield* sl.writeSeqlock();
              yield* data.store(data.value + 1);
              yield* sl.writeSequnlock();
            }
          });
        },
      );
    },
  },
  {
    name: 'rcu_read_lock section',
    run: (cpus) => {
      let rcu: Rcu;
      const data = new MemoryLine('data');
      return perCpu(cpus, 0, (m) => {
        rcu = new Rcu(m);
        return function* () {
          yield* rcu.readLock();
          yield* read(data);
          yield* rcu.readUnlock();
        };
      });
    },
  },
];

const rows: string[] = [];
const header = `| CPUs | ${benches.map((b) => b.name).join(' | ')} |`;
rows.push(header, `|---:|${benches.map(() => '---:').join('|')}|`);
for (const cpus of CPUS) {
  const cells = benches.map((b) => b.run(cpus).toFixed(1));
  rows.push(`| ${cpus} | ${cells.join(' | ')} |`);
}
console.log('Throughput in million sections per simulated second (timed policy, default cost model)');
console.log(rows.join('\n'));
