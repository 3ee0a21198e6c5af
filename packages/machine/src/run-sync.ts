import { type Effect, EffectKind, type Kernel } from './effects.js';
import { KernelFault } from './errors.js';
import { type CallStack, resumeCalls } from './trampoline.js';

/** Raised when kernel code run with {@link runSync} would have to sleep or wait for another CPU. */
export class WouldBlockError extends KernelFault {
  override name = 'WouldBlockError';
  constructor(message: string) {
    super('would-block', message);
  }
}

/**
 * Runs kernel code to completion outside any machine, as a single CPU with nothing else running: memory
 * effects cost nothing, `now()` returns a counter of performed effects, interrupts toggle a local flag,
 * and anything that would wait for another CPU (sleeping on a wait queue whose condition is false, sending
 * an IPI that waits for acks) throws {@link WouldBlockError}. This is the synchronous API every package
 * offers for standalone use and host-speed benchmarks; the concurrent behaviour is only seen on a
 * {@link Machine}.
 */
export function runSync<T>(code: Kernel<T>): T {
  let irqs = true;
  let clock = 0;
  let resume: unknown;
  const stack: CallStack = { top: code, callers: [] };
  for (;;) {
    const r = resumeCalls(stack, resume);
    if (r.done) return r.value as T;
    const e: Effect = r.value;
    resume = undefined;
    clock++;
    switch (e.kind) {
      case EffectKind.IrqDisable:
        resume = irqs;
        irqs = false;
        break;
      case EffectKind.IrqEnable:
        irqs = true;
        break;
      case EffectKind.IrqRestore:
        irqs = e.enabled;
        break;
      case EffectKind.Now:
        resume = clock;
        break;
      case EffectKind.Self:
        resume = { cpu: 0, task: syncTask, inIrq: false, irqsEnabled: irqs };
        break;
      case EffectKind.Block:
        if (!e.until || !e.until()) {
          throw new WouldBlockError(
            `would sleep on '${e.wq.label}' with no other CPU to wake it (use a Machine)`,
          );
        }
        break;
      case EffectKind.Ipi:
        if (e.deviceAfterNs !== undefined) {
          clock += e.deviceAfterNs;
          runSync(e.handler(0));
          break;
        }
        if (e.wait && e.targets.length > 0) {
          throw new WouldBlockError(
            'would wait for IPI acknowledgements with no other CPU running (use a Machine)',
          );
        }
        break;
      case EffectKind.Spin:
      case EffectKind.SpinWait:
        throw new WouldBlockError('would spin waiting for another CPU (use a Machine)');
      case EffectKind.RmwLoop:
        // Every attempt is one performed effect, as in the loop the effect stands for.
        while (e.step()) clock++;
        break;
      case EffectKind.Wake:
        resume = 0;
        break;
      case EffectKind.WakeTask:
        resume = false;
        break;
      default:
        break;
    }
  }
}

/** The pseudo-task `self()` returns under {@link runSync}. */
const syncTask = { id: -1, name: 'sync', cpu: 0, preemptCount: 0 };
