/**
 * Host cost of one uncontended lock/unlock pair, run on a one-CPU machine under the timed policy.
 * Run: npx tsx --conditions=@spf/source bench/uncontended.ts   (or `pnpm bench:uncontended` in packages/locks)
 * Prints host nanoseconds per pair (wall clock of this process) and simulated nanoseconds per pair.
 */
import { performance } from 'node:perf_hooks';
import { type Kernel, Machine } from '@spf/machine';
import {
  defaultLockdep,
  Lockdep,
  Mutex,
  RangeLock,
  Rcu,
  RwSemaphore,
  SeqCount,
  SpinLock,
} from '../src/index.js';

const PAIRS = 50_000;

type Case = { name: string; make: (m: Machine, ld: Lockdep | false) => () => Kernel<void> };

const cases: Case[] = [
  {
    name: 'spin_lock/spin_unlock',
    make: (_m, ld) => {
      const l = new SpinLock('l', { lockdep: ld });
      return function* () {
        yield* l.lock();
        yield* l.unlock();
      };
    },
  },
  {
    name: 'spin_lock_irqsave/restore',
    make: (_m, ld) => {
      const l = new SpinLock('l', { lockdep: ld });
      return function* () {
        const f = yield* l.lockIrqsave();
        yield* l.unlockIrqrestore(f);
      };
    },
  },
  {
    name: 'mutex_lock/mutex_unlock',
    make: (_m, ld) => {
      const l = new Mutex('m', { lockdep: ld });
      return function* () {
        yield* l.lock();
        yield* l.unlock();
      };
    },
  },
  {
    name: 'down_read/up_read',
    make: (_m, ld) => {
      const s = new RwSemaphore('s', { lockdep: ld });
      return function* () {
        yield* s.downRead();
        yield* s.upRead();
      };
    },
  },
  {
    name: 'down_write/up_write',
    make: (_m, ld) => {
      const s = new RwSemaphore('s', { lockdep: ld });
      return function* () {
        yield* s.downWrite();
        yield* s.upWrite();
      };
    },
  },
  {
    name: 'range lock downRead/upRead',
    make: (_m, ld) => {
      const s = new RangeLock('r', { lockdep: ld });
      return function* () {
        yield* s.downRead();
        yield* s.upRead();
      };
    },
  },
  {
    name: 'read_seqcount_begin/retry',
    make: () => {
      const s = new SeqCount('s');
      return function* () {
        const seq = yield* s.readBegin();
        yield* s.readRetry(seq);
      };
    },
  },
  {
    name: 'rcu_read_lock/unlock',
    make: (m) => {
      const rcu = new Rcu(m);
      return function* () {
        yield* rcu.readLock();
        yield* rcu.readUnlock();
      };
    },
  },
];

function measure(c: Case, lockdep: boolean): { host: number; sim: number } {
  const ld = lockdep ? new Lockdep() : false;
  const m = new Machine({ cpus: 1, maxSteps: 100_000_000 });
  const pair = c.make(m, ld);
  m.spawn(0, 'bench', function* () {
    for (let i = 0; i < PAIRS; i++) yield* pair();
  });
  const t0 = performance.now();
  const r = m.run();
  const t1 = performance.now();
  if (r.failure) throw new Error(r.failure.message);
  return { host: ((t1 - t0) * 1e6) / PAIRS, sim: r.time / PAIRS };
}

defaultLockdep.enabled = false;
// Warm up the JIT once per case.
for (const c of cases) measure(c, false);
console.log(`Uncontended lock/unlock pair, ${PAIRS} pairs on 1 CPU, timed policy (node ${process.version})`);
console.log('| pair | host ns/pair, lockdep off | host ns/pair, lockdep on | simulated ns/pair |');
console.log('|---|---:|---:|---:|');
for (const c of cases) {
  const off = measure(c, false);
  const on = measure(c, true);
  console.log(`| ${c.name} | ${off.host.toFixed(0)} | ${on.host.toFixed(0)} | ${off.sim.toFixed(1)} |`);
}
