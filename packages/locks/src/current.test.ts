import { localIrqDisable, localIrqEnable, Machine, runSync, sendIpi } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { type Current, current, currentOf, describeCurrent, irqsEnabled } from './current.js';

describe('current', () => {
  it('names the running task and its CPU', () => {
    const m = new Machine({ cpus: 2 });
    const seen: string[] = [];
    for (const cpu of [0, 1]) {
      m.spawn(cpu, `t${cpu}`, function* () {
        const c = yield* current();
        seen.push(`${c.task?.name} ${c.cpu} ${describeCurrent(c)}`);
      });
    }
    expect(m.run().failure).toBeNull();
    expect(seen.sort()).toEqual(["t0 0 task 't0' on CPU 0", "t1 1 task 't1' on CPU 1"]);
  });

  it('has no task in an interrupt on an idle CPU, and says so', () => {
    const m = new Machine({ cpus: 2 });
    let inIrq: Current | undefined;
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], function* () {
        inIrq = yield* current();
      });
    });
    expect(m.run().failure).toBeNull();
    expect(inIrq).toEqual({ cpu: 1, task: null });
    expect(describeCurrent(inIrq!)).toBe('an interrupt on idle CPU 1');
  });

  it('currentOf keeps the task self() reported and turns a missing one into null', () => {
    const task = { name: 'x' } as never;
    expect(currentOf({ cpu: 3, task } as never)).toEqual({ cpu: 3, task });
    expect(currentOf({ cpu: 2 } as never)).toEqual({ cpu: 2, task: null });
    expect(currentOf({ cpu: 2, task: undefined } as never).task).toBeNull();
  });
});

describe('irqsEnabled', () => {
  it('reports whether interrupts are on and leaves them as they were', () => {
    const seen: boolean[] = [];
    runSync(
      (function* () {
        seen.push(yield* irqsEnabled());
        seen.push(yield* irqsEnabled()); // still on: the first call restored them
        yield* localIrqDisable();
        seen.push(yield* irqsEnabled());
        seen.push(yield* irqsEnabled()); // still off
        yield* localIrqEnable();
        seen.push(yield* irqsEnabled());
      })(),
    );
    expect(seen).toEqual([true, true, false, false, true]);
  });
});
