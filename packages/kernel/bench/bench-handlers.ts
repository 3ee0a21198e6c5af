import type { FaultHandlerFactory } from '@spf/fault-classic';
import { FAULT_HANDLERS } from '../src/fault-handlers.js';
import { TEST_LOCKLESS_NAME } from '../src/test-support/handler-matrix.js';
import { testLocklessFactory } from '../src/test-support/test-lockless-handler.js';

/** A handler a benchmark compares: its name and factory (default options). */
export interface BenchHandler {
  readonly name: string;
  readonly factory: FaultHandlerFactory;
}

/**
 * The handlers the speculative benchmarks compare: every registered one (classic first, then each design
 * the registry offers, with its default options), plus, with `--self-test` among the arguments, the
 * kernel's test-only lockless handler, labelled as a plumbing check (it is not one of the designs).
 */
export function benchHandlers(argv: readonly string[]): BenchHandler[] {
  const list: BenchHandler[] = FAULT_HANDLERS.map((h) => ({ name: h.name, factory: h.create({}) }));
  if (argv.includes('--self-test')) {
    list.push({ name: `${TEST_LOCKLESS_NAME} (plumbing check, not a design)`, factory: testLocklessFactory });
  }
  return list;
}
