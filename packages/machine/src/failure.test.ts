import { describe, expect, it } from 'vitest';
import { type FailureReport, formatFailure } from './failure.js';

const report: FailureReport = {
  kind: 'use-after-free',
  message: 'read of freed frame 0x42',
  cpu: 1,
  task: 'reader',
  step: 17,
  time: 4200,
  policy: 'pct(seed=3,depth=2)',
  seed: 9,
  schedule: 's1:0*3,1*14',
  cpus: [
    {
      cpu: 0,
      clock: 3000,
      irqsEnabled: true,
      task: null,
      next: 'nothing',
      inIrq: false,
      queuedTasks: [],
      pendingIpis: 0,
    },
    {
      cpu: 1,
      clock: 4200,
      irqsEnabled: false,
      task: 'reader',
      next: 'read frame',
      inIrq: true,
      queuedTasks: ['a', 'b'],
      pendingIpis: 2,
    },
  ],
  lastEvents: [
    { step: 15, cpu: 1, time: 4000, what: 'rmw lock' },
    { step: 16, cpu: 1, time: 4100, what: 'read frame' },
  ],
  stack: 'UseAfterFreeError: read of freed frame 0x42\n    at reader (a.ts:1:1)\n    at step (b.ts:2:2)',
};

describe('formatFailure', () => {
  it('renders every part of a report, with the replay hint when given', () => {
    expect(formatFailure(report, { replayHint: "SPF_REPLAY='s1:0*3,1*14' npx vitest run" })).toBe(
      [
        'USE-AFTER-FREE: read of freed frame 0x42',
        '  at step 17, t=4200ns, CPU 1, task reader (policy pct(seed=3,depth=2), seed 9)',
        '  CPUs:',
        '    CPU 0: idle irqs on t=3000ns next: nothing',
        '    CPU 1: reader [in IPI handler] irqs off t=4200ns next: read frame runqueue: a, b pending IPIs: 2',
        '  last events:',
        '    #15 CPU 1 t=4000ns rmw lock',
        '    #16 CPU 1 t=4100ns read frame',
        '  stack:',
        '    at reader (a.ts:1:1)',
        '    at step (b.ts:2:2)',
        '  schedule: s1:0*3,1*14',
        "  replay: SPF_REPLAY='s1:0*3,1*14' npx vitest run",
      ].join('\n'),
    );
  });

  it('leaves out what a whole-machine failure does not have', () => {
    const deadlock: FailureReport = {
      ...report,
      kind: 'deadlock',
      message: 'every task sleeps',
      cpu: -1,
      task: null,
      cpus: [],
      lastEvents: [],
      stack: undefined,
    };
    expect(formatFailure(deadlock)).toBe(
      [
        'DEADLOCK: every task sleeps',
        '  at step 17, t=4200ns (policy pct(seed=3,depth=2), seed 9)',
        '  CPUs:',
        '  schedule: s1:0*3,1*14',
      ].join('\n'),
    );
  });

  it('names CPU 0 like any other CPU', () => {
    expect(formatFailure({ ...report, cpu: 0 }).split('\n')[1]).toBe(
      '  at step 17, t=4200ns, CPU 0, task reader (policy pct(seed=3,depth=2), seed 9)',
    );
  });

  it('shows at most 11 lines of a long stack', () => {
    const stack = ['Error: x', ...Array.from({ length: 20 }, (_, i) => `   at f${i} (x.ts)`)].join('\n');
    const text = formatFailure({ ...report, stack });
    expect(text).toContain('    at f0 (x.ts)');
    expect(text).toContain('    at f10 (x.ts)');
    expect(text).not.toContain('at f11 ');
    expect(text).not.toContain('Error: x');
  });
});
