import { type BootConfig, boot, faultHandlerByName, type System, type UserContext } from '@spf/kernel';
import type { Kernel } from '@spf/machine';
import type { RssCounter, RssCounterFactory, RssCounterInfo } from '@spf/vma';
import { traceStudent } from '../debug-probe.js';
import { TestFailure } from '../lab-errors.js';
import type { TestContext } from '../lab.js';
import { requireCleanExit } from '../lab3/kernel-harness.js';

/** A user program as the kernel runs it. */
export type Program = (u: UserContext) => Kernel<void>;

/** The student's `createRssCounter(info, nrCpus)`. */
export type CreateRssCounter = (info: RssCounterInfo, nrCpus: number) => RssCounter;

/** RAM of the correctness tests' systems (the performance test sizes its own). */
export const LAB7_MEMORY = 8 << 20;

/**
 * The fault handler of every Lab 7 system: Linux 6.4's per-VMA locks, so that a fault takes no lock that
 * all CPUs share and the RSS counter is what is left to bounce between them.
 */
export const LAB7_FAULT_HANDLER = 'pervma';

/** The student's `createRssCounter`, each counter it makes reporting to the schedule debugger. */
export function studentCreateRssCounter(ctx: TestContext): CreateRssCounter {
  const create = ctx.fn<CreateRssCounter>('percpu-counter.ts', 'createRssCounter');
  return (info, nrCpus) => {
    const c = create(info, nrCpus);
    if (c === null || typeof c !== 'object' || typeof c.add !== 'function') {
      throw new TestFailure('createRssCounter must return an object with add, read and sum', {
        expected: '{ add, read, sum }',
        actual: String(c),
      });
    }
    return traceStudent(c, ['add', 'read', 'sum']);
  };
}

/** The `rssCounting` factory of a system of `cpus` CPUs that uses the student's counters. */
export function studentRssCounting(create: CreateRssCounter, cpus: number): RssCounterFactory {
  return (info) => create(info, cpus);
}

/** Boots @spf/kernel with the per-VMA-lock fault handler and the student's RSS counters. */
export function bootWithCounter(create: CreateRssCounter, config: BootConfig & { cpus: number }): System {
  return boot({
    memory: LAB7_MEMORY,
    ...config,
    faultHandler: faultHandlerByName(LAB7_FAULT_HANDLER),
    rssCounting: studentRssCounting(create, config.cpus),
  });
}

/**
 * Runs the system (one timed run) and fails the test with the kernel's own words if it stopped: a broken
 * invariant, or `check_mm()` at an exit finding a counter that does not sum to 0.
 */
export function runSystem(sys: System): System {
  const r = sys.run();
  if (!r.ok) {
    const f = r.failure;
    throw new TestFailure(`the run stopped: ${f?.kind ?? 'failure'}: ${f?.message ?? '?'}`, {
      expected: 'the programs run to their end, every counter summing to 0 at exit',
      actual: `${f?.kind}: ${f?.message}`,
    });
  }
  requireCleanExit(sys);
  return sys;
}
