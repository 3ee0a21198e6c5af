// Host throughput of the machine (not a test): prints figures for the README and issue notes.
//   npx tsx bench/throughput.ts
import { AtomicCell, Machine, MemoryLine, read, write } from '../src/index.js';

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

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log('timed policy, host effects per second (one host core)');
console.log('| CPUs | effects | effects/s |');
console.log('|---:|---:|---:|');
for (const cpus of [1, 8, 64]) {
  timedEffectsPerSecond(cpus, 20_000); // warm-up
  const { rate, effects } = timedEffectsPerSecond(cpus, Math.floor(4_000_000 / cpus));
  console.log(`| ${cpus} | ${fmt(effects)} | ${fmt(rate)} |`);
}
console.log('\n(explorer figures: npx tsx bench/explorer.ts)');
