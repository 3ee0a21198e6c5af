import { PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFaultCounters, VmStat } from './fault-counters.js';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('fault counters', () => {
  it('start at zero and print as /proc/vmstat lines, one counter per line', () => {
    expect(new TaskFaultCounters()).toEqual({ minflt: 0, majflt: 0 });
    const s = new VmStat();
    s.pgfault = 3;
    s.cowCopies = 1;
    expect(s.toString()).toBe(
      [
        'pgfault 3',
        'pgmajfault 0',
        'pgalloc 0',
        'cowCopies 1',
        'cowReuses 0',
        'pgtableAlloc 0',
        'retries 0',
        'stackExpansions 0',
      ].join('\n'),
    );
  });

  it('a first write to anonymous memory counts one minor fault, one page and its page tables', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w')).toMatchObject({ ok: true, faults: 1 });
    expect(fx.task).toEqual({ minflt: 1, majflt: 0 });
    const lines = fx.env.vmstat.toString().split('\n');
    expect(lines).toContain('pgfault 1');
    expect(lines).toContain('pgmajfault 0');
    expect(lines).toContain('pgalloc 1');
    // PTE table, PMD table, PUD table: the first fault of an empty mm allocates all three.
    expect(lines).toContain('pgtableAlloc 3');
  });
});
