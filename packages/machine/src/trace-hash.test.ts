import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import {
  cpuRelax,
  delay,
  fence,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  read,
  sendIpi,
  write,
  yieldCpu,
} from './effects.js';
import { kassert } from './errors.js';
import { runScenario, type Scenario } from './explore.js';
import { MemoryLine } from './memory-line.js';
import { policyFingerprints } from './policy-fingerprint.js';
import { abbaScenario, counterScenario, TestMutex } from './test-support/scenarios.js';

/**
 * "Nothing lost for speed" (issue 16 item 6): the trace hash, simulated end time, step count, schedule and
 * failure of fixed programs under every policy, recorded before the engine was reorganised and sped up.
 * An engine change that claims to change no simulated behaviour must keep every line; a change that alters
 * simulated timing on purpose updates them in its own commit, saying why.
 */

/** A ticket spinlock made of machine effects: `cpus` CPUs take it `rounds` times each. */
function ticketScenario(cpus: number, rounds: number): Scenario {
  return {
    name: 'ticket lock',
    cpus,
    setup(m) {
      const line = new MemoryLine('ticket');
      const next = new AtomicCell(0, line);
      const head = new Cell(0, line);
      const data = new AtomicCell(0, 'data');
      for (let i = 0; i < cpus; i++) {
        m.spawn(i, `t${i}`, function* (): Kernel<void> {
          for (let r = 0; r < rounds; r++) {
            const ticket = yield* next.fetchAdd(1);
            while ((yield* head.load()) !== ticket) yield* cpuRelax('ticket');
            const v = yield* data.load();
            yield* delay(50 + 10 * i);
            yield* data.store(v + 1);
            yield* head.store(ticket + 1);
          }
        });
      }
      return () => kassert(data.value === cpus * rounds, `data is ${data.value}`);
    },
  };
}

/** A flag handed along a chain of CPUs, each spinning until its predecessor sets it; plus an IPI round. */
function ipiScenario(): Scenario {
  return {
    name: 'ipi',
    cpus: 3,
    setup(m) {
      const flag = new Cell(0, 'flag');
      const acks = new AtomicCell(0, 'acks');
      m.spawn(0, 'sender', function* () {
        yield* delay(200);
        yield* sendIpi([1, 2], function* () {
          yield* acks.fetchAdd(1);
        });
        yield* flag.store(1);
      });
      m.spawn(1, 'irqoff', function* () {
        yield* localIrqDisable();
        while ((yield* flag.load()) === 0) {
          yield* cpuRelax('flag');
          if ((yield* acks.load()) === 1) break;
        }
        yield* localIrqEnable();
        yield* fence();
      });
      m.spawn(2, 'reader', function* () {
        for (let k = 0; k < 4; k++) {
          yield* read(flag.line);
          yield* delay(300);
        }
        yield* write(flag.line);
      });
    },
  };
}

/** Two tasks share CPU 0 with a tick of 2 µs, sleeping on a mutex that a task on CPU 1 also takes. */
function sharedCpuScenario(): Scenario {
  return {
    name: 'shared cpu',
    cpus: 2,
    cost: { tick: 2000 },
    setup(m) {
      const mu = new TestMutex('mu');
      const total = new AtomicCell(0, 'total');
      const body = (who: string) =>
        function* (): Kernel<void> {
          for (let k = 0; k < 3; k++) {
            yield* mu.lock(who);
            yield* total.fetchAdd(1);
            yield* delay(700);
            yield* mu.unlock();
            yield* yieldCpu();
          }
        };
      m.spawn(0, 'a', body('a'));
      m.spawn(0, 'b', body('b'));
      m.spawn(1, 'c', body('c'));
      return () => kassert(total.value === 9, `total is ${total.value}`);
    },
  };
}

const scenarios: Record<string, Scenario> = {
  'lost update': counterScenario(false, 3, 2),
  'atomic counter': counterScenario(true, 4, 5),
  'ticket lock': ticketScenario(3, 3),
  ABBA: abbaScenario(),
  ipi: ipiScenario(),
  'shared cpu': sharedCpuScenario(),
};

const expected: Record<string, Record<string, string>> = {
  'lost update': {
    timed: 'ec09356c t=560 steps=15 sched=d30814e7 assertion@15 t=560 msg=27e03ce6',
    random: '5d379008 t=565 steps=15 sched=c5ca8885 assertion@15 t=565 msg=04ab8561',
    pct: '88e23677 t=242 steps=15 sched=819cd94f ok',
    dfs: '12 runs d040a5f4',
    replay: '88e23677 t=242 steps=15 sched=819cd94f ok',
  },
  'atomic counter': {
    timed: '6824d475 t=1230 steps=24 sched=fa73f86f ok',
    random: 'b9fc7707 t=1002 steps=24 sched=10818eb8 ok',
    pct: '33d499ed t=294 steps=24 sched=6fbb5c6b ok',
    dfs: '12 runs 01dd4b08',
    replay: '33d499ed t=294 steps=24 sched=6fbb5c6b ok',
  },
  'ticket lock': {
    timed: '86c6edae t=2631 steps=153 sched=b95c5167 ok',
    random: '37357f93 t=2991 steps=113 sched=a12fb56a ok',
    pct: '445f5d68 t=662 steps=57 sched=e220d0ca ok',
    dfs: '12 runs 939ee945',
    replay: '445f5d68 t=662 steps=57 sched=e220d0ca ok',
  },
  ABBA: {
    timed: 'c78bfcf1 t=155 steps=8 sched=e745b7c8 deadlock@8 t=155 msg=fad0040c',
    random: '61bf4c99 t=155 steps=8 sched=34090300 deadlock@8 t=155 msg=fad0040c',
    pct: 'af28085d t=307 steps=14 sched=56b00244 ok',
    dfs: '12 runs 76163f88',
    replay: 'af28085d t=307 steps=14 sched=56b00244 ok',
  },
  ipi: {
    timed: 'c671389c t=2606 steps=176 sched=f4ec38c5 ok',
    random: '3c3e2e0b t=2606 steps=38 sched=b0b20535 ok',
    pct: '9374f363 t=2631 steps=26 sched=5bf4f4e5 ok',
    dfs: '12 runs 8b8ec997',
    replay: '9374f363 t=2631 steps=26 sched=5bf4f4e5 ok',
  },
  'shared cpu': {
    timed: 'cf948211 t=27249 steps=67 sched=9821d73d ok',
    random: 'fe49a371 t=27834 steps=78 sched=80cc5a17 ok',
    pct: '9d051c41 t=28795 steps=69 sched=3d809409 ok',
    dfs: '12 runs 5805af39',
    replay: '9d051c41 t=28795 steps=69 sched=3d809409 ok',
  },
};

describe('trace hashes under every policy (nothing lost for speed)', () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it(name, () => {
      const got = policyFingerprints((p) => runScenario(scenario, p));
      if (process.env.SPF_RECORD_FINGERPRINTS) console.log(`FP ${JSON.stringify({ [name]: got })}`);
      expect(got.replay).toBe(got.pct);
      expect(got).toEqual(expected[name]);
    });
  }
});
