import { describe, expect, it } from 'vitest';
import { gradeSources } from './grade.js';
import { timeoutReport } from './timeout-report.js';
import type { Lab } from './lab.js';
import { TestFailure } from './lab-errors.js';
import { lab1 } from './lab1/lab1.js';
import { referenceSources } from './reference-solutions.js';
import { gradeWithWatchdog, type WorkerMessage, type WorkerPort } from './worker-protocol.js';

/** A small lab around one function `add(a, b)` to test the runner itself. */
function adderLab(extra: Partial<Lab> = {}): Lab {
  return {
    id: 'adder',
    title: 'Adder',
    version: 1,
    summary: 'add two numbers',
    injection: { package: '@spf/none', point: 'add' },
    files: [{ name: 'add.ts', starter: 'export const add = (a: number, b: number) => 0;\n' }],
    hints: [],
    buggyVariants: [],
    modules: () => ({ '@spf/helpers': { twice: (x: number) => 2 * x } }),
    tests: [
      {
        id: 'basic',
        title: 'adds',
        points: 60,
        category: 'functionality',
        description: '',
        run(ctx) {
          const add = ctx.fn<(a: number, b: number) => number>('add.ts', 'add');
          const got = add(2, 3);
          if (got !== 5) throw new TestFailure('add(2, 3)', { expected: '5', actual: String(got) });
        },
      },
      {
        id: 'child',
        title: 'adds negatives',
        points: 40,
        category: 'robustness',
        parent: 'basic',
        description: '',
        run(ctx) {
          const add = ctx.fn<(a: number, b: number) => number>('add.ts', 'add');
          if (add(-2, -3) !== -5) throw new TestFailure('add(-2, -3)');
        },
      },
    ],
    ...extra,
  };
}

describe('gradeSources', () => {
  it('awards points per test and skips children of a failed parent (xv6 gating)', async () => {
    const r = await gradeSources(adderLab(), {
      'add.ts': 'export const add = (a: number, b: number) => a * b;',
    });
    expect(r.results.map((x) => [x.id, x.status, x.points])).toEqual([
      ['basic', 'fail', 0],
      ['child', 'skipped', 0],
    ]);
    expect(r.results[0].details).toEqual({ expected: '5', actual: '6' });
    expect(r.results[1].message).toMatch(/parent test 'basic'/);
    expect(r.score).toBe(0);
    expect(r.maxScore).toBe(100);
  });

  it('gives full marks to a correct solution, with TypeScript syntax and host-module imports', async () => {
    const src =
      "import { twice } from '@spf/helpers';\nexport function add(a: number, b: number): number { return twice(a + b) / 2; }\n";
    const r = await gradeSources(adderLab(), { 'add.ts': src });
    expect(r.status).toBe('complete');
    expect(r.score).toBe(100);
  });

  it('reports an exception from student code with its line', async () => {
    const src =
      'export function add(a: number, b: number): number {\n  const x: number = a;\n  throw new RangeError(`bad ${x}`);\n}\n';
    const r = await gradeSources(adderLab(), { 'add.ts': src });
    expect(r.results[0].status).toBe('error');
    expect(r.results[0].message).toContain('add.ts:3');
    expect(r.results[0].message).toContain('RangeError: bad 2');
    expect(r.results[0].details.line).toBe(3);
  });

  it('reports a syntax error with its line and runs nothing', async () => {
    const r = await gradeSources(adderLab(), { 'add.ts': 'export const add = (a: number,, b) => 1;\n\n' });
    expect(r.status).toBe('syntax-error');
    expect(r.error?.line).toBe(1);
    expect(r.error?.message).toMatch(/add\.ts:1:\d+: syntax error/);
    expect(r.results.every((x) => x.status === 'skipped' && x.points === 0)).toBe(true);
  });

  it('refuses imports the lab does not allow, naming what is allowed', async () => {
    const r = await gradeSources(adderLab(), {
      'add.ts': "import fs from 'node:fs';\nexport const add = () => fs;\n",
    });
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toContain("cannot import 'node:fs'; this lab allows @spf/helpers");
  });

  it('captures console output of student code per test', async () => {
    const src = 'export function add(a: number, b: number) { console.log("adding", a, b); return a + b; }';
    const r = await gradeSources(adderLab(), { 'add.ts': src });
    expect(r.results[0].output).toBe('adding 2 3');
    expect(r.results[1].output).toBe('adding -2 -3');
  });

  it('keeps at most 20 000 characters of output per test', async () => {
    const src =
      'export function add(a: number, b: number) { for (let i = 0; i < 10000; i++) console.log("line", i); return a + b; }';
    const r = await gradeSources(adderLab(), { 'add.ts': src });
    expect(r.results[0].output.length).toBeLessThan(20_100);
    expect(r.results[0].output).toMatch(/more characters of output dropped\)$/);
  });

  it('reports a missing export clearly', async () => {
    const r = await gradeSources(adderLab(), { 'add.ts': 'export const plus = 1;' });
    expect(r.results[0].status).toBe('fail');
    expect(r.results[0].message).toBe("add.ts must export a function named 'add' (found no such export)");
  });

  it('produces the stable JSON shape', async () => {
    const r = await gradeSources(lab1, referenceSources(lab1));
    const json = JSON.parse(JSON.stringify(r));
    expect(Object.keys(json).sort()).toEqual([
      'error',
      'lab',
      'maxScore',
      'results',
      'score',
      'status',
      'version',
    ]);
    expect(Object.keys(json.results[0]).sort()).toEqual([
      'category',
      'details',
      'durationMs',
      'id',
      'maxPoints',
      'message',
      'output',
      'parent',
      'points',
      'status',
      'title',
    ]);
  });
});

describe('gradeWithWatchdog', () => {
  /** A fake worker that reports starting `hangOn` and then never answers, as a worker in an infinite loop. */
  function hangingWorker(hangOn: string, done: WorkerMessage[]): () => WorkerPort & { terminated: boolean } {
    return () => {
      const port = {
        terminated: false,
        post() {},
        listen(onMessage: (m: WorkerMessage) => void) {
          queueMicrotask(() => {
            for (const m of done) onMessage(m);
            onMessage({ type: 'start', test: hangOn });
          });
        },
        terminate() {
          port.terminated = true;
        },
      };
      return port;
    };
  }

  it('turns a hanging test into a timeout, keeps earlier results and terminates the worker', async () => {
    const lab = adderLab();
    const first = (
      await gradeSources(lab, { 'add.ts': 'export const add = (a: number, b: number) => a + b;' })
    ).results[0];
    let port: (WorkerPort & { terminated: boolean }) | undefined;
    const spawn = hangingWorker('child', [
      { type: 'start', test: 'basic' },
      { type: 'result', result: first },
    ]);
    const report = await gradeWithWatchdog(lab, {}, () => (port = spawn()), { testTimeLimitMs: 50 });
    expect(report.status).toBe('timeout');
    expect(report.results.map((r) => r.status)).toEqual(['pass', 'timeout']);
    expect(report.results[1].message).toMatch(/still running after 50 ms/);
    expect(report.score).toBe(60);
    expect(port?.terminated).toBe(true);
  });

  it("uses a test's own timeoutMs over the default limit", async () => {
    const base = adderLab();
    const lab = { ...base, tests: [base.tests[0], { ...base.tests[1], timeoutMs: 30 }] };
    const t0 = performance.now();
    const report = await gradeWithWatchdog(lab, {}, hangingWorker('child', []), { testTimeLimitMs: 60_000 });
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(report.results[1].message).toMatch(/still running after 30 ms/);
  });

  it('timeoutReport skips tests after the hanging one', () => {
    const r = timeoutReport(lab1, [], 'translate-4k', 100);
    expect(r.results[0].status).toBe('timeout');
    expect(r.results.slice(1).every((x) => x.status === 'skipped')).toBe(true);
  });
});
