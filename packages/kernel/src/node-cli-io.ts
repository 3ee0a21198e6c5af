import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { toChromeTrace } from '@spf/machine';
import { type CliIo, InputTooLargeError } from './cli-main.js';

/** Pause of a read of a non-blocking standard input that had nothing yet (EAGAIN), in milliseconds. */
const EAGAIN_PAUSE_MS = 5;

/**
 * Reads a file (standard input for `-`) as UTF-8, in 64 KiB chunks, and stops with
 * {@link InputTooLargeError} as soon as it holds more than `maxBytes` bytes, so an endless input such as
 * /dev/zero costs at most `maxBytes` of memory.
 */
export function readBounded(path: string, maxBytes: number): string {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.allocUnsafe(65536);
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_PAUSE_MS);
          continue;
        }
        if (code === 'EOF') break;
        throw e;
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new InputTooLargeError(path, maxBytes);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    if (path !== '-') closeSync(fd);
  }
}

/** The {@link CliIo} of the `spf` command in Node: the process's streams and the file system. */
export const nodeCliIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: readBounded,
  writeFile: (path, text) => writeFileSync(path, text),
  chromeTrace: toChromeTrace,
};
