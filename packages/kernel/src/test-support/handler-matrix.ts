import type { FaultHandlerFactory } from '@spf/fault-classic';
import { FAULT_HANDLERS, faultHandlerByName, UnknownFaultHandlerError } from '../fault-handlers.js';
import { testLocklessFactory } from './test-lockless-handler.js';

/**
 * The kernel's test matrix: `SPF_FAULT_HANDLER=<name> npx vitest run` runs every @spf/kernel test under that
 * fault handler (src/test-support/matrix-setup.ts makes it boot()'s default), and `npm run test:handlers`
 * runs the suite once per handler of {@link matrixHandlerNames}.
 */

/** The name of the test-only lockless handler (test-lockless-handler.ts), accepted by the matrix only. */
export const TEST_LOCKLESS_NAME = 'test-lockless';

/** The handler this test run boots by default: `SPF_FAULT_HANDLER`, or `classic`. */
export function matrixHandlerName(): string {
  const v = process.env.SPF_FAULT_HANDLER;
  return v === undefined || v === '' ? 'classic' : v;
}

/** The factory for a matrix name: a registered handler (`FAULT_HANDLERS`) or the test-only lockless one. */
export function matrixFactory(name: string): FaultHandlerFactory {
  if (name === TEST_LOCKLESS_NAME) return testLocklessFactory;
  try {
    return faultHandlerByName(name);
  } catch (e) {
    if (e instanceof UnknownFaultHandlerError) {
      throw new UnknownFaultHandlerError(name, [...e.known, TEST_LOCKLESS_NAME]);
    }
    throw e;
  }
}

/**
 * The handlers `npm run test:handlers` runs the suite under: every registered one except classic (which the
 * ordinary `npm test` covers). The test-only lockless handler stays available by name
 * (`SPF_MATRIX_HANDLERS=test-lockless`), but the real designs now exercise the same plumbing.
 */
export function matrixHandlerNames(): string[] {
  return FAULT_HANDLERS.map((h) => h.name).filter((n) => n !== 'classic');
}
