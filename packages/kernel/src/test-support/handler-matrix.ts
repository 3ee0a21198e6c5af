import { FAULT_HANDLERS } from '../fault-handlers.js';

/**
 * The kernel's test matrix: `SPF_FAULT_HANDLER=<name> npx vitest run` runs every @spf/kernel test under that
 * fault handler (src/test-support/matrix-setup.ts makes it boot()'s default), and `npm run test:handlers`
 * runs the suite once per handler of {@link matrixHandlerNames}.
 */

/** The handler this test run boots by default: `SPF_FAULT_HANDLER`, or `classic`. */
export function matrixHandlerName(): string {
  const v = process.env.SPF_FAULT_HANDLER;
  return v === undefined || v === '' ? 'classic' : v;
}

/**
 * The handlers `npm run test:handlers` runs the suite under: every registered one except classic (which the
 * ordinary `npm test` covers).
 */
export function matrixHandlerNames(): string[] {
  return FAULT_HANDLERS.map((h) => h.name).filter((n) => n !== 'classic');
}
