import { describe, expect, it } from 'vitest';
import * as lab1Walk from '../lab-files/lab1/reference/walk.js';
import * as lab2Rwsem from '../lab-files/lab2/reference/rwsem.js';
import * as lab2Seqcount from '../lab-files/lab2/reference/seqcount.js';
import * as lab3Anon from '../lab-files/lab3/reference/do-anonymous-page.js';
import * as lab3Wp from '../lab-files/lab3/reference/do-wp-page.js';
import * as lab4Spf from '../lab-files/lab4/reference/speculative-fault.js';
import * as lab6Fault from '../lab-files/lab6/reference/fault-retry.js';
import * as lab6Filemap from '../lab-files/lab6/reference/filemap-retry.js';
import * as lab7Counter from '../lab-files/lab7/reference/percpu-counter.js';
import type { Lab, StudentModules } from './lab.js';
import { lab1 } from './lab1/lab1.js';
import { lab2 } from './lab2/lab2.js';
import { lab3 } from './lab3/lab3.js';
import { lab4 } from './lab4/lab4.js';
import { lab6 } from './lab6/lab6.js';
import { lab7 } from './lab7/lab7.js';
import { runTests } from './runner.js';
import { withAncestors } from './test-chain.js';

// Every lab test against the reference solution imported as an ordinary module (not through the student
// loader), one vitest test per lab test. This is what mutation testing runs (mutation/run.mjs): Stryker
// mutates lab-files/<lab>/reference/*.ts, and a mutant is killed when a lab test fails on it. Children of a
// failed parent are skipped by the runner's gating, which counts as failing here. Each vitest test runs
// its lab test with its ancestors only, so that Stryker's per-test coverage points at the right tests.
const cases: ReadonlyArray<readonly [Lab, StudentModules]> = [
  [lab1, { 'walk.ts': lab1Walk }],
  [lab2, { 'seqcount.ts': lab2Seqcount, 'rwsem.ts': lab2Rwsem }],
  [lab3, { 'do-anonymous-page.ts': lab3Anon, 'do-wp-page.ts': lab3Wp }],
  [lab4, { 'speculative-fault.ts': lab4Spf }],
  [lab6, { 'fault-retry.ts': lab6Fault, 'filemap-retry.ts': lab6Filemap }],
  [lab7, { 'percpu-counter.ts': lab7Counter }],
];

describe.each(cases.map(([lab, modules]) => [lab.id, lab, modules] as const))(
  '%s reference solution as modules',
  (_id, lab, modules) => {
    it.each(lab.tests.map((t) => [t.id] as const))('passes %s', async (id) => {
      const results = await runTests(withAncestors(lab, id), modules);
      const r = results.find((x) => x.id === id);
      expect(r?.status, `${id}: ${r?.message}`).toBe('pass');
    });
  },
);
