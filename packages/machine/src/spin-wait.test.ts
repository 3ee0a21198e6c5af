import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import {
  cpuRelax,
  delay,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  preemptDisable,
  readEffect,
  sendIpi,
  spinWaitEffect,
  write,
} from './effects.js';
import { kassert } from './errors.js';
import { explore, replaySchedule, runScenario, runTimed, type Scenario } from './explore.js';
import { MemoryLine } from './memory-line.js';
import { policyFingerprints, runFingerprint } from './policy-fingerprint.js';
import { random } from './policy/random.js';
import { timed } from './policy/timed.js';

/**
 * A ticket lock taken `rounds` times by each of `cpus` CPUs, its waiters spinning either with the plain
 * loop (read, check, `cpuRelax()`) or with the pure spin-wait effect. With `sharedCpu`, CPU 0 also runs a
 * second task, so the tick preempts spinners. `name` labels the waiters' PAUSE (null: no label).
 */
function ticketScenario(
  pure: boolean | 'until',
  cpus = 3,
  rounds = 3,
  sharedCpu = false,
  name: string | null = 'ticket',
): Scenario {
  const label = name ?? undefined;
  return {
    name: `ticket lock (${pure ? 'pure spin-wait' : 'plain loop'})`,
    cpus,
    cost: sharedCpu ? { tick: 1500 } : undefined,
    setup(m) {
      const line = new MemoryLine('ticket');
      const next = new AtomicCell(0, line);
      const head = new Cell(0, line);
      const wait = spinWaitEffect(line, label);
      const data = new AtomicCell(0, 'data');
      const body = (i: number) =>
        function* (): Kernel<void> {
          for (let r = 0; r < rounds; r++) {
            const ticket = yield* next.fetchAdd(1);
            if (pure === 'until') {
              // The exit condition stated: the machine resumes this code only when the ticket is served.
              const served = () => head.value === ticket;
              const waitFor = spinWaitEffect(line, label, undefined, served);
              yield readEffect(line);
              while (!served()) yield waitFor;
            } else if (pure) {
              yield readEffect(line);
              while (head.value !== ticket) yield wait;
            } else {
              while ((yield* head.load()) !== ticket) yield* cpuRelax(label);
            }
            const v = yield* data.load();
            yield* delay(50 + 10 * i);
            yield* data.store(v + 1);
            yield* head.store(ticket + 1);
          }
        };
      for (let i = 0; i < cpus; i++) m.spawn(i, `t${i}`, body(i));
      if (sharedCpu) m.spawn(0, 'second', body(cpus));
      const total = (cpus + (sharedCpu ? 1 : 0)) * rounds;
      return () => kassert(data.value === total, `data is ${data.value}`);
    },
  };
}

describe('pure spin-wait (spinning at the price of one event)', () => {
  it('runs exactly as the plain loop under every policy: trace hash, time, schedule, failures', () => {
    for (const [cpus, rounds, shared] of [
      [3, 3, false],
      [2, 4, true],
      [6, 2, false],
    ] as const) {
      const plain = policyFingerprints((p) => runScenario(ticketScenario(false, cpus, rounds, shared), p), {
        dfsRuns: 30,
      });
      const pure = policyFingerprints((p) => runScenario(ticketScenario(true, cpus, rounds, shared), p), {
        dfsRuns: 30,
      });
      expect(pure).toEqual(plain);
      const until = policyFingerprints((p) => runScenario(ticketScenario('until', cpus, rounds, shared), p), {
        dfsRuns: 30,
      });
      expect(until).toEqual(plain);
    }
  });

  it('many quiet spinners (timed, stepped from the ring of quiet spinners) run exactly as the plain loop: seeds, ties, costs, the tick', () => {
    // Under timed, CPUs that only PAUSE and re-read an unchanged line they hold are stepped outside the ready
    // heap; every step must still come in the heap's order (ready time, then rank), with the same clocks.
    const cases: Array<[number, number, boolean, number, Record<string, number> | undefined]> = [
      [16, 3, false, 0, undefined],
      [16, 3, false, 7, undefined], // jitter on misses and a seeded tie-break order
      [12, 2, true, 3, undefined], // CPU 0 shared: the tick preempts its spinner
      [12, 2, false, 0, { pause: 1, l1Hit: 1 }], // every step collides with another CPU's: ties by rank
      [12, 2, false, 0, { pause: 40, l1Hit: 4 }],
      [8, 2, false, 0, { pause: 2.5 }], // a period that is not a whole number of ns: no ring, same run
      [6, 2, false, 7, { pause: 0 }], // a free PAUSE: no ring (a spinner's two steps would start together)
      [6, 2, false, 7, { l1Hit: 0 }],
      [8, 2, false, 0, { pause: 1, l1Hit: 4 }], // a PAUSE cheaper than an L1 hit
    ];
    for (const [cpus, rounds, shared, machineSeed, cost] of cases) {
      const at = (pure: boolean | 'until') => {
        const sc = ticketScenario(pure, cpus, rounds, shared);
        return runScenario({ ...sc, machineSeed, cost: { ...(sc.cost ?? {}), ...(cost ?? {}) } }, timed());
      };
      const plain = at(false);
      expect(plain.ok).toBe(true);
      for (const pure of [true, 'until'] as const) {
        const r = at(pure);
        expect(runFingerprint(r)).toBe(runFingerprint(plain));
        expect(r.clocks).toEqual(plain.clocks);
        expect(r.effects).toBe(plain.effects);
        expect(r.spinsSkipped).toBeGreaterThan(cpus * 20);
      }
    }
  });

  it('quiet spinners that get IPIs, a second task or an interrupt-off section run as the plain loop (timed)', () => {
    // The ring may only hold a CPU whose next steps are a quiet spin: one with an IPI in its inbox, a handler
    // running, a task waiting for the CPU or a task just woken must be stepped through the heap. Each of these
    // is provoked many times here while the ticket's waiters spin; the run must equal the plain loop's.
    const scenario = (pure: boolean | 'until', cpus: number, machineSeed: number): Scenario => {
      const inner = ticketScenario(pure, cpus, 3, true);
      return {
        ...inner,
        cpus: cpus + 1,
        machineSeed,
        setup(m) {
          const check = inner.setup(m);
          const other = new Cell(0, 'other');
          const sender = cpus;
          m.spawn(sender, 'ipi-sender', function* (): Kernel<void> {
            for (let k = 0; k < 40; k++) {
              yield* delay(97 + 31 * (k % 7));
              const target = 1 + (k % (cpus - 1));
              yield* sendIpi(
                [target],
                function* (): Kernel<void> {
                  yield readEffect(other.line);
                  yield* delay(20 + (k % 3) * 15);
                },
                k % 2 === 0,
              );
              if (k % 5 === 0) yield* other.store(k);
            }
          });
          m.spawn(1, 'late', function* (): Kernel<void> {
            yield* delay(900);
            yield* localIrqDisable();
            yield* delay(250);
            yield* localIrqEnable();
          });
          return check;
        },
      };
    };
    for (const [cpus, seed] of [
      [6, 0],
      [6, 5],
      [9, 2],
    ] as const) {
      const plain = runScenario(scenario(false, cpus, seed), timed());
      expect(plain.ok).toBe(true);
      for (const pure of [true, 'until'] as const) {
        const r = runScenario(scenario(pure, cpus, seed), timed());
        expect(runFingerprint(r)).toBe(runFingerprint(plain));
        expect(r.clocks).toEqual(plain.clocks);
        expect(r.spinsSkipped).toBeGreaterThan(cpus * 10);
      }
    }
  });

  it('a timed run that steps quiet spinners outside the general step replays step for step: same trace, labels, clocks and spinsSkipped', () => {
    // Under timed, quiet spinners are stepped from the ring of quiet spinners or by the heap's fast path; the
    // replay policy steps every CPU through the general step. Both must record the same events (the PAUSE's
    // label, or none, and the re-read's line label) and count the same skipped iterations, whatever the costs
    // (a PAUSE cheaper than an L1 hit too).
    const cases: Array<[boolean | 'until', string | null, Record<string, number> | undefined]> = [
      [true, 'ticket', undefined],
      ['until', 'ticket', undefined],
      [true, null, undefined],
      ['until', null, { pause: 1, l1Hit: 4 }],
      [true, 'ticket', { pause: 3, l1Hit: 7 }],
      [true, 'ticket', { pause: 2.5 }], // no ring: the heap's fast path
    ];
    for (const [pure, label, cost] of cases) {
      const sc = ticketScenario(pure, 8, 2, false, label);
      const scenario = { ...sc, cost: { ...(sc.cost ?? {}), ...(cost ?? {}) } };
      const r = runScenario(scenario, timed(), { trace: true });
      expect(r.ok).toBe(true);
      expect(r.spinsSkipped).toBeGreaterThan(100);
      const again = replaySchedule(scenario, r.schedule, { trace: true });
      expect(again.spinsSkipped).toBe(r.spinsSkipped);
      expect(again.clocks).toEqual(r.clocks);
      expect(again.trace).toEqual(r.trace);
      const pauses = r.trace!.filter((e) => e.kind === 'spin');
      expect(new Set(pauses.map((e) => e.label))).toEqual(new Set([label ?? '']));
      // And the order is the plain loop's (a ring entry at the wrong time would step a spinner out of order).
      const plainSc = ticketScenario(false, 8, 2, false, label);
      const plain = runScenario({ ...plainSc, cost: scenario.cost }, timed(), { trace: true });
      expect(r.trace).toEqual(plain.trace);
    }
  });

  it('the step limit stops quiet spinners at exactly maxSteps, whether they step from the ring or the fast path', () => {
    // Two CPUs spin (quietly: nothing else can happen on them) while a third waits 1 ms before releasing them.
    for (const cost of [undefined, { pause: 2.5 }]) {
      const scenario: Scenario = {
        cpus: 3,
        maxSteps: 300,
        cost,
        setup(m) {
          const flag = new Cell(0, 'flag');
          const wait = spinWaitEffect(flag.line, 'flag');
          for (const cpu of [0, 1]) {
            m.spawn(cpu, `spinner${cpu}`, function* () {
              yield readEffect(flag.line);
              while (flag.value === 0) yield wait;
            });
          }
          m.spawn(2, 'releaser', function* () {
            yield* delay(1_000_000);
            yield* flag.store(1);
          });
        },
      };
      const r = runTimed(scenario);
      expect(r.failure?.kind).toBe('step-limit');
      expect(r.steps).toBe(300);
      expect(r.failure!.message).toMatch(/^no end after 300 steps/);
      expect(r.spinsSkipped).toBeGreaterThan(140);
      expect(r.time).toBeLessThan(10_000);
    }
  });

  it('skips the loop code while the line is unchanged (timed), and the random explorer replays the same schedules', () => {
    const pure = runTimed(ticketScenario(true, 6, 2));
    const plain = runTimed(ticketScenario(false, 6, 2));
    expect(pure.traceHash).toBe(plain.traceHash);
    expect(plain.spinsSkipped).toBe(0);
    // Most iterations ran no kernel code: each waiter re-ran its loop only when the ticket line changed,
    // and, with its exit condition stated, only when its ticket was served.
    expect(pure.spinsSkipped).toBeGreaterThan(100);
    const until = runTimed(ticketScenario('until', 6, 2));
    expect(until.traceHash).toBe(plain.traceHash);
    expect(until.spinsSkipped).toBeGreaterThan(pure.spinsSkipped);
    for (let seed = 1; seed <= 20; seed++) {
      const a = runScenario(ticketScenario(true, 3, 2), random(seed));
      const b = runScenario(ticketScenario(false, 3, 2), random(seed));
      expect(a.schedule).toBe(b.schedule);
      expect(replaySchedule(ticketScenario(false, 3, 2), a.schedule).traceHash).toBe(a.traceHash);
      expect(replaySchedule(ticketScenario(true, 3, 2), b.schedule).traceHash).toBe(b.traceHash);
    }
  });

  it('explorers find the same lost update with pure and plain spinning', () => {
    // A broken lock: the waiter stops spinning as soon as the head moves at all, not at its own ticket.
    const broken = (pure: boolean): Scenario => ({
      cpus: 3,
      setup(m) {
        const line = new MemoryLine('ticket');
        const next = new AtomicCell(0, line);
        const head = new Cell(0, line);
        const data = new Cell(0, 'data');
        const wait = spinWaitEffect(line, 'ticket');
        for (let i = 0; i < 3; i++) {
          m.spawn(i, `t${i}`, function* () {
            const ticket = yield* next.fetchAdd(1);
            const seen = head.value;
            if (pure) {
              yield readEffect(line);
              while (head.value === seen && seen !== ticket) yield wait;
            } else {
              while ((yield* head.load()) === seen && seen !== ticket) yield* cpuRelax('ticket');
            }
            const v = yield* data.load();
            yield* data.store(v + 1);
            yield* head.store(head.value + 1);
          });
        }
        return () => kassert(data.value === 3, `data is ${data.value}`);
      },
    });
    const found = new Set<string>();
    for (const policy of ['random', 'pct', 'dfs'] as const) {
      const a = explore(broken(true), { policy, runs: 300, seed: 5 });
      const b = explore(broken(false), { policy, runs: 300, seed: 5 });
      if (a.failure) found.add(policy);
      expect(a.failure?.kind).toBe(b.failure?.kind);
      expect(a.runs).toBe(b.runs);
      expect(a.failure?.schedule).toBe(b.failure?.schedule);
    }
    expect(found.has('random')).toBe(true);
  });

  it('a spin-wait in an IPI handler and a spinner interrupted by an IPI run as their plain loops do', () => {
    const scenario = (pure: boolean): Scenario => ({
      cpus: 3,
      setup(m) {
        const flag = new Cell(0, 'flag');
        const wait = spinWaitEffect(flag.line, 'flag');
        const spinOnFlag = function* (): Kernel<void> {
          if (pure) {
            yield readEffect(flag.line);
            while (flag.value === 0) yield wait;
          } else {
            while ((yield* flag.load()) === 0) yield* cpuRelax('flag');
          }
        };
        m.spawn(0, 'sender', function* () {
          yield* sendIpi([1], spinOnFlag, false);
          yield* delay(700);
          yield* sendIpi([2], function* () {
            yield* write(flag.line);
          });
          yield* delay(300);
          yield* flag.store(1);
        });
        m.spawn(1, 'waiter', function* () {
          yield* delay(100);
          yield* spinOnFlag();
        });
        m.spawn(2, 'irqoff', function* () {
          yield* localIrqDisable();
          yield* delay(400);
          yield* localIrqEnable();
          yield* spinOnFlag();
        });
      },
    });
    expect(policyFingerprints((p) => runScenario(scenario(true), p))).toEqual(
      policyFingerprints((p) => runScenario(scenario(false), p)),
    );
  });
});

describe('pure spin-wait: bad input is reported, not a hang', () => {
  it('a loop declared pure that writes memory fails with impure-spin and a replayable schedule', () => {
    const scenario: Scenario = {
      cpus: 2,
      setup(m) {
        const flag = new Cell(0, 'flag');
        const other = new Cell(0, 'other');
        const wait = spinWaitEffect(flag.line, 'flag');
        m.spawn(0, 'impure', function* () {
          yield readEffect(flag.line);
          while (flag.value === 0) {
            yield wait;
            yield* other.store(other.value + 1); // not pure: a store between two looks
          }
        });
        m.spawn(1, 'setter', function* () {
          yield* delay(5000);
          yield* flag.store(1);
        });
      },
    };
    const r = runTimed(scenario);
    expect(r.failure?.kind).toBe('impure-spin');
    expect(r.failure?.message).toMatch(
      /task impure on CPU 0 declared a pure spin-wait on 'flag', but with the line unchanged its code went on to write other/,
    );
    expect(r.failure?.cpu).toBe(0);
    expect(r.steps).toBeLessThan(20);
    const again = replaySchedule(scenario, r.failure!.schedule);
    expect(again.failure?.kind).toBe('impure-spin');
    expect(again.traceHash).toBe(r.traceHash);
    // The random explorer finds it too, in a schedule where the spinner looks twice before the setter
    // stores (pct lets the setter run first: it treats a spinning CPU as yielding).
    expect(explore(scenario, { policy: 'random', runs: 50 }).failure?.kind).toBe('impure-spin');
  });

  it('a spin on a line nobody will write fails with spin-forever, naming the spinners, with a replayable schedule', () => {
    const scenario: Scenario = {
      cpus: 3,
      setup(m) {
        const flag = new Cell(0, 'never written');
        const wait = spinWaitEffect(flag.line, 'flag');
        for (const cpu of [0, 2]) {
          m.spawn(cpu, `spinner${cpu}`, function* () {
            yield readEffect(flag.line);
            while (flag.value === 0) yield wait;
          });
        }
        m.spawn(1, 'worker', function* () {
          yield* delay(20_000); // spinning meanwhile is fine: this CPU could still write the line
          yield* write(new MemoryLine('elsewhere'));
        });
      },
    };
    const r = runTimed(scenario);
    expect(r.failure?.kind).toBe('spin-forever');
    expect(r.failure?.message).toMatch(/spinner0 on CPU 0 spins on 'never written'; spinner2 on CPU 2 spins/);
    // It stopped soon after the worker finished (20 µs of spinning is about 1,100 iterations per CPU),
    // not at the step limit.
    expect(r.steps).toBeLessThan(6000);
    expect(r.failure!.time).toBeGreaterThan(20_000);
    const again = replaySchedule(scenario, r.failure!.schedule);
    expect(again.failure?.kind).toBe('spin-forever');
    expect(again.traceHash).toBe(r.traceHash);
    expect(explore(scenario, { policy: 'random', runs: 3 }).failure?.kind).toBe('spin-forever');
  });
});

describe('pure spin-wait: when the code runs again, and which spinners are stuck', () => {
  /** Four CPUs take a ticket lock twice each; `counts` records what the waiters' code saw and did. */
  const counted = (
    until: boolean,
    counts: { waits: number; iterations: number; resumes: number },
  ): Scenario => ({
    cpus: 4,
    setup(m) {
      const line = new MemoryLine('ticket');
      const next = new AtomicCell(0, line);
      const head = new Cell(0, line);
      const data = new AtomicCell(0, 'data');
      for (let i = 0; i < 4; i++) {
        m.spawn(i, `t${i}`, function* () {
          for (let r = 0; r < 2; r++) {
            const ticket = yield* next.fetchAdd(1);
            if (until) {
              const served = () => head.value === ticket;
              const waitFor = spinWaitEffect(line, 'ticket', undefined, served);
              yield readEffect(line);
              if (!served()) counts.waits++;
              while (!served()) {
                counts.resumes++; // the loop's code runs: before the first spin, then only when served
                yield waitFor;
              }
            } else {
              let first = true;
              while ((yield* head.load()) !== ticket) {
                if (first) counts.waits++;
                first = false;
                counts.iterations++;
                yield* cpuRelax('ticket');
              }
            }
            const v = yield* data.load();
            yield* delay(50 + 10 * i);
            yield* data.store(v + 1);
            yield* head.store(ticket + 1);
          }
        });
      }
      return () => kassert(data.value === 8, `data is ${data.value}`);
    },
  });

  it('a loop with a stated exit condition runs its code again only when the condition holds, and every other look is skipped', () => {
    const plain = { waits: 0, iterations: 0, resumes: 0 };
    const until = { waits: 0, iterations: 0, resumes: 0 };
    const a = runTimed(counted(false, plain));
    const b = runTimed(counted(true, until));
    expect(a.ok && b.ok).toBe(true);
    expect(b.traceHash).toBe(a.traceHash);
    expect(until.waits).toBe(plain.waits);
    expect(plain.waits).toBeGreaterThan(2);
    // One run of the loop body before the first spin of each wait, none after: the machine resumed the code
    // only when the ticket was served, though the head moved several times during most waits.
    expect(until.resumes).toBe(until.waits);
    // Each wait iterates as the plain loop does (a spin, then a look at the line); the last look of each wait
    // runs the code, every other look is skipped.
    expect(b.spinsSkipped).toBe(plain.iterations - plain.waits);
    expect(a.spinsSkipped).toBe(0);
  });

  it('a loop declared pure after an earlier pure loop on another line is checked again', () => {
    // The first loop shows itself pure and ends; the second, on another line, stores between looks.
    const r = runTimed({
      cpus: 2,
      setup(m) {
        const a = new Cell(0, 'a');
        const b = new Cell(0, 'b');
        const other = new Cell(0, 'other');
        m.spawn(0, 'spinner', function* () {
          const waitA = spinWaitEffect(a.line, 'a');
          yield readEffect(a.line);
          while (a.value === 0) yield waitA;
          const waitB = spinWaitEffect(b.line, 'b');
          yield readEffect(b.line);
          while (b.value === 0) {
            yield waitB;
            yield* other.store(other.value + 1); // not pure
          }
        });
        m.spawn(1, 'setter', function* () {
          yield* delay(2000);
          yield* a.store(1);
        });
      },
    });
    expect(r.failure?.kind).toBe('impure-spin');
    expect(r.failure?.message).toMatch(
      /declared a pure spin-wait on 'b', but with the line unchanged its code went on to write other/,
    );
  });

  it('a loop declared pure that accesses its own line, or spins on another line, between looks is impure', () => {
    const run = (then: 'store' | 'other-spin') =>
      runTimed({
        cpus: 2,
        setup(m) {
          const flag = new Cell(0, 'flag');
          const other = new Cell(0, 'other');
          const wait = spinWaitEffect(flag.line, 'flag');
          const waitOther = spinWaitEffect(other.line, 'other');
          m.spawn(0, 'impure', function* () {
            yield readEffect(flag.line);
            while (flag.value === 0) {
              yield wait;
              if (then === 'store')
                yield* flag.store(0); // writes the line it spins on
              else yield waitOther; // one look at another line
            }
          });
          m.spawn(1, 'setter', function* () {
            yield* delay(5000);
            yield* flag.store(1);
          });
        },
      });
    const store = run('store');
    expect(store.failure?.kind).toBe('impure-spin');
    expect(store.failure?.message).toMatch(
      /on 'flag', but with the line unchanged its code went on to write flag instead/,
    );
    const spin = run('other-spin');
    expect(spin.failure?.kind).toBe('impure-spin');
    expect(spin.failure?.message).toMatch(
      /on 'flag', but with the line unchanged its code went on to read other instead/,
    );
  });

  it('a loop with a stated exit condition on a line written once and then never is reported as spin-forever', () => {
    const r = runTimed({
      cpus: 2,
      setup(m) {
        const flag = new Cell(0, 'flag');
        const wait = spinWaitEffect(flag.line, 'flag', undefined, () => flag.value === 2);
        m.spawn(0, 'waiter', function* () {
          yield readEffect(flag.line);
          while (flag.value !== 2) yield wait;
        });
        m.spawn(1, 'setter', function* () {
          yield* delay(2000);
          yield* flag.store(1); // not the value the waiter waits for, and the last store
        });
      },
    });
    expect(r.failure?.kind).toBe('spin-forever');
    expect(r.failure?.message).toMatch(/waiter on CPU 0 spins on 'flag'/);
    expect(r.steps).toBeLessThan(1000);
  });

  it('a loop with a stated exit condition counts as stuck from its first spin: spin-forever comes one check interval later', () => {
    // The waiter enters its spin-wait just before a 20 us IPI handler runs on its CPU, so it comes back far ahead
    // of CPU 2 and takes its first look only when CPU 2 catches up, about 1,100 steps later. Nobody can write
    // either line, and the report comes 64 + 8 per CPU spin steps after the handler, not after that first look.
    const r = runTimed({
      cpus: 3,
      cost: { ipiSend: 300, ipiLatency: 1000, dram: 85 },
      setup(m) {
        const a = new Cell(0, 'a');
        const b = new Cell(0, 'b');
        const waitA = spinWaitEffect(a.line, 'a', undefined, () => a.value !== 0);
        const waitB = spinWaitEffect(b.line, 'b');
        m.spawn(0, 'waiter', function* () {
          yield* delay(1250);
          yield readEffect(a.line); // a DRAM miss that ends after the IPI arrived (at 1300)
          while (a.value === 0) yield waitA;
        });
        m.spawn(2, 'spinner', function* () {
          yield readEffect(b.line);
          while (b.value === 0) yield waitB;
        });
        m.spawn(1, 'sender', function* () {
          yield* sendIpi(
            [0],
            function* () {
              yield* delay(20_000);
            },
            false,
          );
        });
      },
    });
    expect(r.failure?.kind).toBe('spin-forever');
    expect(r.failure?.message).toMatch(/waiter on CPU 0 spins on 'a'; spinner on CPU 2 spins on 'b'/);
    expect(r.failure!.cpus[0]!.clock).toBeGreaterThan(21_000);
    expect(r.failure!.cpus[2]!.clock).toBeLessThan(5000);
    expect(r.steps).toBeLessThan(400);
  });

  it('a spinner whose CPU is in an IPI handler is not stuck: the handler may write the line', () => {
    // CPU 0's handler runs for 20 us and then releases both spinners; CPU 2 spins meanwhile for hundreds of
    // steps, long enough for the spin-forever check to look at CPU 0 while its handler runs.
    const r = runTimed({
      cpus: 3,
      setup(m) {
        const flag = new Cell(0, 'flag');
        const wait = spinWaitEffect(flag.line, 'flag');
        const spin = function* (): Kernel<void> {
          yield readEffect(flag.line);
          while (flag.value === 0) yield wait;
        };
        m.spawn(0, 'spinner0', spin);
        m.spawn(2, 'spinner2', function* () {
          yield* delay(10);
          yield* spin();
        });
        m.spawn(1, 'sender', function* () {
          yield* sendIpi(
            [0],
            function* () {
              yield* delay(20_000);
              yield* flag.store(1);
            },
            false,
          );
        });
      },
    });
    expect(r.failure).toBeNull();
    expect(r.spinsSkipped).toBeGreaterThan(500);
  });

  it('a spinner whose line was written since its code last ran is not stuck: its next look runs the code', () => {
    // CPU 0 comes back from a 20 us handler far ahead of CPU 2; CPU 1 releases CPU 0's spinner meanwhile,
    // and CPU 2 spins for hundreds of steps before CPU 0 looks at its line again and then releases CPU 2.
    const r = runTimed({
      cpus: 3,
      setup(m) {
        const a = new Cell(0, 'a');
        const b = new Cell(0, 'b');
        const waitA = spinWaitEffect(a.line, 'a');
        const waitB = spinWaitEffect(b.line, 'b');
        m.spawn(0, 'spinner0', function* () {
          yield readEffect(a.line);
          while (a.value === 0) yield waitA;
          yield* b.store(1);
        });
        m.spawn(2, 'spinner2', function* () {
          yield readEffect(b.line);
          while (b.value === 0) yield waitB;
        });
        m.spawn(1, 'writer', function* () {
          yield* sendIpi(
            [0],
            function* () {
              yield* delay(20_000);
            },
            false,
          );
          yield* delay(5000);
          yield* a.store(1);
        });
      },
    });
    expect(r.failure).toBeNull();
    expect(r.spinsSkipped).toBeGreaterThan(500);
  });

  it('a spinner the tick can preempt for a task on its CPU is not stuck; with preemption or interrupts off it is', () => {
    const run = (guard: 'none' | 'preempt' | 'irq') =>
      runTimed({
        cpus: 1,
        cost: { tick: 20_000 },
        setup(m) {
          const flag = new Cell(0, 'flag');
          const wait = spinWaitEffect(flag.line, 'flag');
          m.spawn(0, 'spinner', function* () {
            if (guard === 'preempt') yield* preemptDisable();
            if (guard === 'irq') yield* localIrqDisable();
            yield readEffect(flag.line);
            while (flag.value === 0) yield wait;
          });
          m.spawn(0, 'setter', function* () {
            yield* flag.store(1);
          });
        },
      });
    const ok = run('none');
    expect(ok.failure).toBeNull();
    expect(ok.spinsSkipped).toBeGreaterThan(100); // it spun until the tick let the setter run
    for (const guard of ['preempt', 'irq'] as const) {
      const r = run(guard);
      expect(r.failure?.kind, guard).toBe('spin-forever');
      expect(r.failure?.message).toMatch(/spinner on CPU 0 spins on 'flag'/);
      expect(r.steps).toBeLessThan(1000);
    }
  });
});
