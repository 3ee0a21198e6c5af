import type { FaultHandlerFactory } from '@spf/fault-classic';
import { FAULT_HANDLERS } from '../src/fault-handlers.js';

/** A handler a benchmark compares: its name and factory (default options). */
export interface BenchHandler {
  readonly name: string;
  readonly factory: FaultHandlerFactory;
}

/**
 * The handlers the speculative benchmarks compare: every registered one (classic first, then each design
 * the registry offers, with its default options).
 */
export function benchHandlers(): BenchHandler[] {
  return FAULT_HANDLERS.map((h) => ({ name: h.name, factory: h.create({}) }));
}
