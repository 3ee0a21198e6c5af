import { describe, expect, it } from 'vitest';
import { traceStudent } from './debug-probe.js';
import { formatDebugStep, formatDebugTimeline, stepThrough } from './format-debug.js';
import { gradeSources } from './grade.js';
import { lab2 } from './lab2/lab2.js';
import { referenceSources } from './reference-solutions.js';
import type { TestResult } from './result.js';
import { activeRecorder, type ScheduleDebug } from './schedule-debug.js';
import { variantSources } from './variants.js';

// The schedule debugger's data, checked against what the failing runs of Lab 2's known-buggy variants do.

async function failing(variant: string, test: string, schedules?: Record<string, string>) {
  const sources = variantSources(lab2, variant);
  const report = await gradeSources(lab2, sources, schedules ? { schedules } : {});
  const r = report.results.find((x) => x.id === test) as TestResult;
  expect(r.status).toBe('fail');
  const debug = r.details.debug as ScheduleDebug;
  expect(debug).toBeDefined();
  return { r, debug, sources };
}

const placeAt = (d: ScheduleDebug, i: number, cpu: number) => d.places[d.steps[i].cpus[cpu]];
const lockAt = (d: ScheduleDebug, i: number) => d.lockStates[d.steps[i].locks[0]];
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('schedule debugger', () => {
  it('follows a 4-CPU lost update to the writer asleep in the student line that called block()', async () => {
    const { r, debug, sources } = await failing('non-atomic-reader-count', 'rwsem-atomic-reader-count');
    expect(debug.cpus).toBe(4);
    expect(debug.schedule).toBe(r.details.schedule);
    expect(debug.cellNames).toEqual(['sem.count']);
    const last = debug.steps.length - 1;
    expect(debug.steps[last].step + 1).toBe(debug.totalSteps);
    const writer = placeAt(debug, last, 3);
    expect(writer.task).toBe('writer');
    expect(writer.state).toBe('blocked');
    expect(writer.code).toEqual({
      file: 'rwsem.ts',
      line: lineOf(sources['rwsem.ts'], 'return block(sem.waitQueue'),
      fn: 'downWrite',
    });
    expect(writer.call).toMatch(/^block\(sem/);
    expect(writer.via).toBe('RwSemaphore.downWrite (@spf/locks)');
    // Every reader left, yet the count says one reader holds the lock: an update was lost.
    expect(debug.steps[last].cells).toEqual(['1']);
    expect(lockAt(debug, last)).toEqual({ name: 'sem', holders: [], waiters: ['writer (write)'] });
    for (const c of [0, 1, 2]) expect(placeAt(debug, last, c).state).toBe('done');
    // Stepping back, a reader was caught between its load and its store, in upRead.
    const torn = debug.steps.findIndex((_, i) =>
      [0, 1, 2].some((c) => placeAt(debug, i, c).call?.startsWith('sem.count.store(')),
    );
    expect(torn).toBeGreaterThanOrEqual(0);
  });

  it('changes a cell only at steps that touched its line, and holders follow the lock paths', async () => {
    const { debug } = await failing('writer-ignores-holders', 'rwsem-mutual-exclusion');
    expect(debug.cpus).toBe(3);
    for (let i = 1; i < debug.steps.length; i++) {
      const s = debug.steps[i];
      if (s.cells[0] !== debug.steps[i - 1].cells[0]) expect(s.did).toMatch(/(rmw|write) sem\b/);
    }
    // The failing step: a writer got in while someone else held the lock.
    const holders = lockAt(debug, debug.steps.length - 1).holders;
    expect(holders.length).toBeGreaterThanOrEqual(2);
    expect(holders.some((h) => /^writer\d \(write\)$/.test(h))).toBe(true);
    // Before anyone took the lock, nobody held it.
    expect(lockAt(debug, 0).holders).toEqual([]);
  });

  it('is deterministic, and the failing schedule reopens the same failure', async () => {
    const a = await failing('no-retry-loop', 'seq-readers-notice-writers');
    const b = await failing('no-retry-loop', 'seq-readers-notice-writers');
    expect(b.debug).toEqual(a.debug);
    const schedule = a.r.details.schedule as string;
    const again = await failing('no-retry-loop', 'seq-readers-notice-writers', {
      'seq-readers-notice-writers': schedule,
    });
    expect(again.r.message).toContain('replaying the schedule you asked for');
    expect(again.debug).toEqual(a.debug);
    expect(a.debug.cellNames).toEqual(['seq.sequence', 'x', 'y']);
  });

  it('says so when a schedule does not fit the code', async () => {
    const report = await gradeSources(lab2, referenceSources(lab2), {
      schedules: { 'rwsem-atomic-reader-count': 's1:0*3' },
    });
    const r = report.results.find((x) => x.id === 'rwsem-atomic-reader-count') as TestResult;
    expect(r.status).toBe('fail');
    expect(r.message).toMatch(/^the schedule to replay does not fit this code/);
  });

  it('costs nothing outside a debug replay: passing tests carry no debugger data', async () => {
    expect(activeRecorder()).toBeNull();
    const impl = {
      *f() {
        yield 1;
        return 2;
      },
    };
    const traced = traceStudent(impl, ['f']);
    expect([...traced.f()]).toEqual([1]);
    const report = await gradeSources(lab2, referenceSources(lab2));
    expect(report.results.every((x) => x.details.debug === undefined)).toBe(true);
  });

  it('prints a step and a timeline as text, and steps forward and back', async () => {
    const { debug, sources } = await failing('non-atomic-reader-count', 'rwsem-atomic-reader-count');
    const text = formatDebugStep(debug, debug.steps.length - 1, sources);
    expect(text).toContain(`Step ${debug.totalSteps} of ${debug.totalSteps}`);
    expect(text).toMatch(
      /CPU 3 {2}writer +blocked +rwsem\.ts:\d+ in your downWrite: +return block\(sem\.waitQueue/,
    );
    expect(text).toContain('kernel: calls block(sem');
    expect(text).toContain('locks: sem: held by nobody; waiting: writer (write)');
    const tl = formatDebugTimeline(debug, 5);
    expect(tl).toHaveLength(6);
    expect(tl[5]).toMatch(/^step +\d+ {2}CPU 3 +writer: block sem +\| sem\.count=1$/);
    const input = ['p', 'p', 'n', String(debug.steps[3].step + 1), 'q', 'n'];
    const out: string[] = [];
    await stepThrough(
      debug,
      async () => input.shift() ?? null,
      (t) => out.push(t),
      sources,
    );
    const heads = out.filter((t) => t.startsWith('Step ')).map((t) => Number(/^Step (\d+)/.exec(t)?.[1]));
    const n = debug.totalSteps;
    expect(heads).toEqual([n, n - 1, n - 2, n - 1, debug.steps[3].step + 1]);
    expect(input).toEqual(['n']);
  });
});
