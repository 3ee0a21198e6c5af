import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { generate, generateReference } from '../scripts/embed-sources.mjs';
import { referenceWalk } from '@spf/pagetable';
import { gradeSources, validateLab } from './grade.js';
import { labOutline } from './lab.js';
import { lab1 } from './lab1/lab1.js';
import { runTests } from './runner.js';
import { labs } from './registry.js';
import { referenceSources } from './reference-solutions.js';
import { starterSources, variantSources } from './variants.js';

// The CI checks every lab must pass: the starter scores below 30%, each known-buggy variant fails the test
// aimed at it, and the reference solution scores full marks.
describe.each(labs.map((l) => [l.id, l] as const))('%s', (_id, lab) => {
  it('is a consistent definition', () => {
    expect(() => validateLab(lab)).not.toThrow();
    expect(lab.tests.reduce((s, t) => s + t.points, 0)).toBe(100);
  });

  it('embeds the current lab-files sources', () => {
    const current = readFileSync(new URL(`./${lab.id}/files.gen.ts`, import.meta.url), 'utf8');
    expect(current, 'run `pnpm run embed` in packages/labs').toBe(generate(lab.id));
    const ref = readFileSync(new URL(`./${lab.id}/reference.gen.ts`, import.meta.url), 'utf8');
    expect(ref, 'run `pnpm run embed` in packages/labs').toBe(generateReference(lab.id));
  });

  it('keeps the reference solution out of the lab and its outline (what pages embed)', () => {
    const outline = JSON.stringify(labOutline(lab));
    const lines = Object.values(referenceSources(lab))
      .flatMap((text) => text.split('\n'))
      .filter((l) => l.trim().length > 40 && !Object.values(starterSources(lab)).some((s) => s.includes(l)));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(outline).not.toContain(JSON.stringify(l).slice(1, -1));
    expect(lab.files.every((f) => Object.keys(f).sort().join() === 'name,starter')).toBe(true);
  });

  it('reference solution scores 100%', async () => {
    const report = await gradeSources(lab, referenceSources(lab));
    const failed = report.results.filter((r) => r.status !== 'pass');
    expect(failed.map((r) => `${r.id}: ${r.message} ${JSON.stringify(r.details)}`)).toEqual([]);
    expect(report.score).toBe(report.maxScore);
  });

  it('starter scores 0 on every test (each one needs the student’s code)', async () => {
    const report = await gradeSources(lab, starterSources(lab));
    expect(report.status).toBe('complete');
    expect(report.results.filter((r) => r.points > 0).map((r) => r.id)).toEqual([]);
  });

  it.each(lab.buggyVariants.map((v) => [v.id, v] as const))(
    'buggy variant %s fails its target test',
    async (_v, v) => {
      const report = await gradeSources(lab, variantSources(lab, v));
      const target = report.results.find((r) => r.id === v.mustFail);
      expect(target?.status, `${v.id} must fail ${v.mustFail}`).toBe('fail');
      expect(report.score).toBeLessThan(report.maxScore);
    },
  );
});

describe('lab1 against @spf/pagetable', () => {
  it("the package's own referenceWalk passes every Lab 1 test (the tests demand nothing beyond the SDM)", async () => {
    const results = await runTests(lab1, { 'walk.ts': { walk: referenceWalk } });
    expect(results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.message}`)).toEqual([]);
  });
});
