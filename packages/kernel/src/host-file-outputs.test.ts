import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { diffReplayOutputs } from './replay/diff.js';
import { runReplay } from './run-replay.js';
import { KNOWN_FILE_DIFFERENCES as KNOWN_DIFFERENCES } from './test-support/file-known-differences.js';

/**
 * The committed corpus of host outputs (conformance/host-file-outputs/, recorded on the development VM by
 * scripts/record-host-file-outputs.ts): every script runs on the simulator, configured as host.txt says the
 * host was, and must print exactly what the host printed. No host is needed: this runs everywhere.
 */
const dir = fileURLToPath(new URL('../conformance/host-file-outputs/', import.meta.url));
const host = Object.fromEntries(
  readFileSync(`${dir}host.txt`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]),
) as Record<string, string>;
const options = {
  zeroPage: host['zero-page'] === 'yes',
  files: { readAheadKb: Number(host['read-ahead-kb']), faultAroundPages: Number(host['fault-around-pages']) },
};

const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.script'))
  .sort();

describe('the simulator prints what the host printed for the committed file scripts', () => {
  it('has the corpus and the host settings it was recorded with', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(20);
    expect(options.files.readAheadKb).toBeGreaterThan(0);
    expect(options.files.faultAroundPages).toBeGreaterThan(0);
  });

  for (const f of scripts) {
    const known = KNOWN_DIFFERENCES[f];
    const test = known === undefined ? it : it.fails;
    test(`${f}${known === undefined ? '' : ` (known difference: ${known})`}`, () => {
      const script = readFileSync(dir + f, 'utf8');
      const expected = readFileSync(dir + f.replace(/\.script$/, '.out'), 'utf8');
      const sim = runReplay(script, options).output;
      expect(diffReplayOutputs(script, expected, sim)).toBeNull();
    }, 120_000);
  }

  it('catches a simulator configured unlike the host (fault-around off)', () => {
    const script = readFileSync(`${dir}fault-around.script`, 'utf8');
    const expected = readFileSync(`${dir}fault-around.out`, 'utf8');
    const sim = runReplay(script, { ...options, files: { ...options.files, faultAroundPages: 1 } }).output;
    expect(diffReplayOutputs(script, expected, sim)).toMatch(/^op 4 \(line 6\): `pagemap 0 64`/);
  });
});
