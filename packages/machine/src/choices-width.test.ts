import { describe, expect, it } from 'vitest';
import { write } from './effects.js';
import { Machine } from './machine.js';
import { MemoryLine } from './memory-line.js';
import { replay } from './policy/replay.js';
import { decodeSchedule } from './schedule.js';

/** Every CPU of an n-CPU machine writes one shared line a few times. */
function build(cpus: number, policy?: ReturnType<typeof replay>): Machine {
  const m = new Machine({ cpus, policy });
  const line = new MemoryLine('shared');
  for (let c = 0; c < cpus; c++) {
    m.spawn(c, `t${c}`, function* () {
      for (let k = 0; k < 3; k++) yield* write(line);
    });
  }
  return m;
}

describe('the recorded schedule of a large machine', () => {
  // The machine keeps one byte per step up to 256 CPUs and two beyond: CPU ids above 255 must survive.
  for (const cpus of [256, 257, 1024]) {
    it(`names every CPU of a ${cpus}-CPU machine and replays to the same run`, () => {
      const first = build(cpus).run();
      expect(first.ok).toBe(true);
      const chosen = decodeSchedule(first.schedule);
      expect(chosen).toHaveLength(first.steps);
      expect(new Set(chosen).size).toBe(cpus);
      expect(Math.max(...chosen)).toBe(cpus - 1);
      const again = build(cpus, replay(first.schedule)).run();
      expect(again.ok).toBe(true);
      expect(again.traceHash).toBe(first.traceHash);
    });
  }
});
