import { FAULT_FLAG_SPECULATIVE, FAULT_FLAG_VMA_LOCK } from '@spf/fault-classic';
import { describe, expect, it } from 'vitest';
import { gradeSources } from './grade.js';
import { LabDefinitionError } from './lab-errors.js';
import { lab2 } from './lab2/lab2.js';
import { lab3 } from './lab3/lab3.js';
import { lab4 } from './lab4/lab4.js';
import { lab5 } from './lab5/lab5.js';
import { referenceSources } from './reference-solutions.js';
import { variantSources } from './variants.js';
import { withAncestors } from './test-chain.js';

// Issue 18: later labs run on the student's own earlier solutions where those have full marks, with the
// earlier lab's tests as the regression category.

/**
 * A Lab 3 solution with full marks on Lab 3 (the classic handler never sets `flag`) whose
 * do_anonymous_page() throws when it runs with `flag`: it shows whose code a later lab's fault ran.
 */
function lab3Marked(flag: number, name: string): Record<string, string> {
  const src = referenceSources(lab3);
  const file = 'do-anonymous-page.ts';
  const head = 'export function* doAnonymousPage(vmf: ClassicVmFault): Kernel<number> {\n';
  expect(src[file]).toContain(head);
  return {
    ...src,
    [file]: src[file].replace(
      head,
      `${head}  if ((vmf.flags & ${flag}) !== 0) throw new Error('your Lab 3 do_anonymous_page ran under ${name}');\n`,
    ),
  };
}

describe('later labs on earlier solutions', () => {
  it('Lab 5 runs on a full-marks Lab 3 solution: its tests are regression results worth no points', async () => {
    const report = await gradeSources(withAncestors(lab5, 'pervma-fork'), referenceSources(lab5), {}, [
      { lab: lab3, sources: referenceSources(lab3) },
    ]);
    expect(report.earlier).toEqual([{ lab: 'lab3', score: 100, maxScore: 100, used: true }]);
    const regression = report.results.filter((r) => r.category === 'regression');
    expect(regression.map((r) => r.id)).toEqual(lab3.tests.map((t) => `lab3/${t.id}`));
    expect(regression.every((r) => r.status === 'pass' && r.maxPoints === 0)).toBe(true);
    expect(report.results.find((r) => r.id === 'lab3/same-page-race')?.parent).toBe(
      `lab3/${lab3.tests.find((t) => t.id === 'same-page-race')?.parent}`,
    );
    expect(report.score).toBe(report.maxScore);
  });

  it("Lab 5's faults under the VMA lock run the student's Lab 3 code", async () => {
    const report = await gradeSources(withAncestors(lab5, 'pervma-faults'), referenceSources(lab5), {}, [
      { lab: lab3, sources: lab3Marked(FAULT_FLAG_VMA_LOCK, 'the VMA lock') },
    ]);
    expect(report.earlier?.[0]).toMatchObject({ score: 100, used: true });
    const first = report.results.find((r) => r.id === 'pervma-faults');
    expect(first?.status).not.toBe('pass');
    expect(first?.message).toMatch(/your Lab 3 do_anonymous_page ran under the VMA lock/);
  });

  it("Lab 4's speculative faults run the student's Lab 3 code", async () => {
    const report = await gradeSources(withAncestors(lab4, 'spec-first-touch'), referenceSources(lab4), {}, [
      { lab: lab3, sources: lab3Marked(FAULT_FLAG_SPECULATIVE, 'SPF') },
    ]);
    expect(report.earlier?.[0]).toMatchObject({ score: 100, used: true });
    expect(report.results.find((r) => r.id === 'spec-first-touch')?.message).toMatch(
      /your Lab 3 do_anonymous_page ran under SPF/,
    );
  });

  it('an earlier solution without full marks is not used: the lab runs on the package code, its failures are regression results', async () => {
    const report = await gradeSources(withAncestors(lab5, 'pervma-faults'), referenceSources(lab5), {}, [
      { lab: lab3, sources: variantSources(lab3, 'rss-miscounted') },
    ]);
    expect(report.earlier?.[0]).toMatchObject({ lab: 'lab3', used: false });
    expect(report.earlier?.[0].score).toBeLessThan(100);
    expect(report.results.find((r) => r.id === 'lab3/rss-counts')?.status).toBe('fail');
    expect(report.results.find((r) => r.id === 'pervma-faults')?.status).toBe('pass');
    expect(report.score).toBe(report.maxScore);
  });

  it('an earlier solution that does not transpile is reported, not used', async () => {
    const report = await gradeSources(withAncestors(lab5, 'pervma-faults'), referenceSources(lab5), {}, [
      { lab: lab3, sources: { ...referenceSources(lab3), 'do-wp-page.ts': 'export function (' } },
    ]);
    expect(report.earlier?.[0]).toMatchObject({ used: false, score: 0 });
    expect(report.earlier?.[0].error).toMatch(/do-wp-page\.ts/);
    expect(
      report.results.filter((r) => r.category === 'regression').every((r) => r.status === 'skipped'),
    ).toBe(true);
  });

  it('refuses a lab the graded lab does not build on', async () => {
    await expect(
      gradeSources(lab5, referenceSources(lab5), {}, [{ lab: lab2, sources: referenceSources(lab2) }]),
    ).rejects.toThrow(LabDefinitionError);
    await expect(
      gradeSources(lab5, referenceSources(lab5), {}, [{ lab: lab2, sources: referenceSources(lab2) }]),
    ).rejects.toThrow(/lab5 does not build on lab2; it builds on lab3/);
  });
});
