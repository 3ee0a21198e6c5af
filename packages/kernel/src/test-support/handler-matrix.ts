import { FAULT_HANDLERS, type FaultHandlerOptions, parseSpecOptions } from '../fault-handlers.js';

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
 * The design options of the matrix's handler: `SPF_FAULT_HANDLER_OPTIONS`, comma-separated `key=value` texts
 * in `--spec-option`'s syntax (`SPF_FAULT_HANDLER=dufour SPF_FAULT_HANDLER_OPTIONS=fileVmas=true,
 * singleThreadShortcut=false` runs the suite under Dufour's design with file VMAs). Empty: the defaults.
 */
export function matrixHandlerOptions(): FaultHandlerOptions {
  const v = process.env.SPF_FAULT_HANDLER_OPTIONS;
  if (v === undefined || v.trim() === '') return {};
  return parseSpecOptions(
    v
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== ''),
  );
}

/**
 * The handlers `npm run test:handlers` runs the suite under: every registered one except classic (which the
 * ordinary `npm test` covers).
 */
export function matrixHandlerNames(): string[] {
  return FAULT_HANDLERS.map((h) => h.name).filter((n) => n !== 'classic');
}
