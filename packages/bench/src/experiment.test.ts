import { describe, expect, it } from 'vitest';
import { markdownTable, points, spread, sweep } from './experiment.js';
import { EXPERIMENTS, experimentById } from './experiments/index.js';

describe('experiment helpers', () => {
  it('spread gives min, median and max', () => {
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3, n: 3 });
    expect(spread([4, 1, 2, 3]).median).toBe(2.5);
    expect(() => spread([])).toThrow(RangeError);
  });

  it('sweep gives one configuration per variant, CPU count and seed, with unique ids', () => {
    const c = sweep('s', 'pft', ['a', 'b'], [1, 2], { quick: true, seeds: 3 }, (v, n, seed) => ({
      cpus: n,
      handler: v,
      seed,
    }));
    expect(c).toHaveLength(12);
    expect(new Set(c.map((x) => x.id)).size).toBe(12);
  });

  it('points group records over seeds', () => {
    const c = sweep('s', 'pft', ['a'], [2], { quick: true, seeds: 3 }, (v, n, seed) => ({
      cpus: n,
      handler: v,
      seed,
    }));
    const recs = c.map((config, index) => ({
      index,
      config,
      hostMs: 0,
      result: {
        score: 10 * (index + 1),
        unit: 'x',
        simNs: 1,
        faults: 1,
        speculativeShare: 0,
        aborts: {},
        extra: {},
      },
    }));
    expect(points(recs, 's')).toEqual([
      {
        series: 's',
        variant: 'a',
        cpus: 2,
        value: { min: 10, median: 20, max: 30, n: 3 },
        speculativeShare: 0,
      },
    ]);
  });

  it('markdownTable right-aligns numbers', () => {
    expect(markdownTable(['a', 'b'], [['x', '1']])).toBe('| a | b |\n| --- | ---: |\n| x | 1 |');
  });

  it('every experiment has unique configuration ids and names the unknown one in its error', () => {
    for (const e of EXPERIMENTS) {
      const c = e.configs({ quick: true, seeds: 2 });
      expect(new Set(c.map((x) => x.id)).size).toBe(c.length);
    }
    expect(experimentById('e7').id).toBe('E7');
    expect(() => experimentById('E99')).toThrow(
      /unknown experiment "E99"; choose one of E1, E2, E3, E4, E5, E6, E7, E8 or all/,
    );
  });
});
