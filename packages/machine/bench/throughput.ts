// Host throughput of the machine (not a test): prints figures for the README and issue notes.
//   npx tsx bench/throughput.ts
import { AtomicCell, explore, Machine, MemoryLine, read, type Scenario, write } from '../src/index.js';

function timedEffectsPerSecond(cpus: number, effectsPerCpu: number): { rate: number; effects: number } {
  const m = new Machine({ cpus });
  for (let i = 0; i < cpus; i++) {
    const mine = new AtomicCell(0, `private${i}`);
    const shared = new MemoryLine('shared');
    m.spawn(i, `t${i}`, function* () {
      for (let k = 0; k < effectsPerCpu; k += 4) {
        yield* mine.fetchAdd(1);
        yield* read(shared);
        yield* write(mine.line);
        yield* read(mine.line);
      }
    });
  }
  const t0 = performance.now();
  const r = m.run();
  const dt = (performance.now() - t0) / 1000;
  if (!r.ok) throw new Error(r.failure!.message);
  return { rate: r.effects / dt, effects: r.effects };
}

// A 2-CPU scenario of 100 effects in all (50 per CPU), as in the target.
const hundredEffects: Scenario = {
  cpus: 2,
  setup(m) {
    const x = new AtomicCell(0, 'x');
    for (let i = 0; i < 2; i++) {
      m.spawn(i, `t${i}`, function* () {
        for (let k = 0; k < 50; k++) yield* x.fetchAdd(1);
      });
    }
  },
};

function schedulesPerSecond(policy: 'random' | 'pct' | 'dfs', runs: number): number {
  const t0 = performance.now();
  const r = explore(hundredEffects, { policy, runs, bound: 2 });
  const dt = (performance.now() - t0) / 1000;
  return r.runs / dt;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log('timed policy, host effects per second (one host core)');
console.log('| CPUs | effects | effects/s |');
console.log('|---:|---:|---:|');
for (const cpus of [1, 8, 64]) {
  timedEffectsPerSecond(cpus, 20_000); // warm-up
  const { rate, effects } = timedEffectsPerSecond(cpus, Math.floor(4_000_000 / cpus));
  console.log(`| ${cpus} | ${fmt(effects)} | ${fmt(rate)} |`);
}
console.log('\nexplorer, schedules per second for a 2-CPU, 100-effect scenario');
console.log('| policy | schedules/s |');
console.log('|---|---:|');
for (const p of ['random', 'pct', 'dfs'] as const) {
  schedulesPerSecond(p, 500);
  console.log(`| ${p} | ${fmt(schedulesPerSecond(p, 20_000))} |`);
}
