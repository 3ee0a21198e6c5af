import { describe, expect, it } from 'vitest';
import { AtomicCell } from './cell.js';
import {
  block,
  cpuRelax,
  delay,
  type Effect,
  EffectKind,
  fence,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  localIrqRestore,
  localIrqSave,
  now,
  self,
  sendIpi,
  spinWait,
  wake,
  wakeTask,
} from './effects.js';
import { KernelFault } from './errors.js';
import { MemoryLine } from './memory-line.js';
import { runSync, WouldBlockError } from './run-sync.js';
import type { Task } from './task.js';
import { WaitQueue } from './wait-queue.js';

describe('runSync: kernel code on a lone CPU, outside a machine', () => {
  it("returns the code's result; now() counts the effects performed so far", () => {
    const c = new AtomicCell(5, 'c');
    expect(
      runSync(
        (function* () {
          const a = yield* now(); // 1st effect
          yield* c.fetchAdd(2); // 2nd
          yield* fence(); // 3rd
          yield* delay(1_000_000); // 4th: no time passes but an effect
          const b = yield* now(); // 5th
          return [a, b, c.value];
        })(),
      ),
    ).toEqual([1, 5, 7]);
  });

  it('keeps a local interrupt flag that self() and localIrqSave() report', () => {
    const seen: unknown[] = [];
    runSync(
      (function* () {
        const s = yield* self();
        seen.push(s.cpu, s.inIrq, s.irqsEnabled, s.task.name);
        yield* localIrqDisable();
        seen.push((yield* self()).irqsEnabled);
        yield* localIrqEnable();
        seen.push((yield* self()).irqsEnabled);
        seen.push(yield* localIrqSave()); // was on
        seen.push(yield* localIrqSave()); // now off
        yield* localIrqRestore(true);
        seen.push((yield* self()).irqsEnabled);
        yield* localIrqRestore(false);
        seen.push((yield* self()).irqsEnabled);
      })(),
    );
    expect(seen).toEqual([0, false, true, 'sync', false, true, true, false, true, false]);
  });

  it('wake-ups find nobody to wake, and a block whose condition holds goes straight on', () => {
    const wq = new WaitQueue('wq');
    const out = runSync(
      (function* (): Kernel<unknown[]> {
        const woke = yield { kind: EffectKind.Wake, wq, count: 1 } as Effect;
        const wokeTask = yield { kind: EffectKind.WakeTask, task: {} as Task } as Effect;
        yield* wake(wq);
        yield* wakeTask({} as Task);
        yield* block(wq, () => true);
        yield* sendIpi([1], function* () {}, false); // no wait: fine
        yield* sendIpi([], function* () {}); // nobody to wait for
        return [woke, wokeTask];
      })(),
    );
    expect(out).toEqual([0, false]);
  });

  it('throws WouldBlockError, a KernelFault, for anything that would wait for another CPU', () => {
    const wq = new WaitQueue('never');
    const line = new MemoryLine('flag');
    const cases: Array<[Kernel<void>, string]> = [
      [block(wq), "would sleep on 'never' with no other CPU to wake it (use a Machine)"],
      [block(wq, () => false), "would sleep on 'never' with no other CPU to wake it (use a Machine)"],
      [
        sendIpi([1], function* () {}),
        'would wait for IPI acknowledgements with no other CPU running (use a Machine)',
      ],
      [cpuRelax(), 'would spin waiting for another CPU (use a Machine)'],
      [spinWait(line), 'would spin waiting for another CPU (use a Machine)'],
    ];
    for (const [code, message] of cases) {
      let err: unknown;
      try {
        runSync(code);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WouldBlockError);
      expect(err).toBeInstanceOf(KernelFault);
      expect((err as WouldBlockError).message).toBe(message);
      expect((err as WouldBlockError).name).toBe('WouldBlockError');
      expect((err as KernelFault).kind).toBe('would-block');
    }
  });
});
