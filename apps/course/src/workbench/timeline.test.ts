import { AtomicCell, replaySchedule, explore, type Scenario, toCompactTrace } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { renderTimelineSvg, timelineRows } from './timeline.js';

/** A lost update: two CPUs load then store a counter. */
const lostUpdate: Scenario = {
  cpus: 2,
  setup(m) {
    const counter = new AtomicCell(0, 'counter');
    for (let cpu = 0; cpu < 2; cpu++) {
      m.spawn(cpu, `inc${cpu}`, function* () {
        const v = yield* counter.load();
        yield* counter.store(v + 1);
      });
    }
    return () => {
      if (counter.value !== 2) throw new Error(`counter is ${counter.value}`);
    };
  },
};

describe('timeline', () => {
  it('draws one column per CPU and one row per step of a failing schedule', () => {
    const res = explore(lostUpdate, { policy: 'random', runs: 200 });
    expect(res.failure).not.toBeNull();
    const run = replaySchedule(lostUpdate, res.failure?.schedule ?? '', { trace: true });
    const trace = toCompactTrace(run.trace ?? [], 2);
    const rows = timelineRows(trace);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(new Set(rows.map((r) => r.cpu))).toEqual(new Set([0, 1]));
    expect(rows.some((r) => r.text.includes('counter'))).toBe(true);
    const svg = renderTimelineSvg(trace);
    expect(svg).toContain('CPU 0');
    expect(svg).toContain('CPU 1');
    expect(svg.match(/data-row=/g)?.length).toBe(rows.length);
  });

  it('escapes labels', () => {
    const svg = renderTimelineSvg({
      version: 1,
      cpus: 1,
      strings: ['read', '<x&y>', 't'],
      events: [[0, 0, 1, 0, 1, 2, 1]],
    });
    expect(svg).toContain('&lt;x&amp;y&gt;');
    expect(svg).not.toContain('<x&y>');
  });
});
