import { it } from 'vitest';
import { matrixHandlerName } from './handler-matrix.js';

/**
 * `it()` for a test that pins a fact of the classic handler only (a trace fingerprint, the exact machine
 * effects of the classic path). Under another handler of the matrix the test is reported as skipped, and
 * its title (also printed as a warning) says why: `[classic-only under <handler>: <reason>]`.
 */
export function itClassicOnly(
  reason: string,
  name: string,
  fn: () => void | Promise<void>,
  timeout?: number,
): void {
  const handler = matrixHandlerName();
  if (handler === 'classic') it(name, fn, timeout);
  else {
    const title = `${name} [classic-only under ${handler}: ${reason}]`;
    // Said out loud as well: the default reporter only counts skipped tests.
    console.warn(`skipped: ${title}`);
    it.skip(title, fn, timeout);
  }
}
