import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { faultHandlerByName } from './fault-handlers.js';
import { diffReplayOutputs } from './replay/diff.js';
import { runReplay } from './run-replay.js';
import {
  describeHandlerConfig,
  type HandlerConfig,
  KNOWN_FILE_DIFFERENCES as KNOWN_DIFFERENCES,
} from './test-support/file-known-differences.js';
import { matrixHandlerName, matrixHandlerOptions } from './test-support/handler-matrix.js';

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

  /** The simulator's output for script `f` and how it differs from the host's (null: identical). */
  const diffFor = (f: string, config?: HandlerConfig): string | null => {
    const script = readFileSync(dir + f, 'utf8');
    const expected = readFileSync(dir + f.replace(/\.script$/, '.out'), 'utf8');
    const faultHandler = config && faultHandlerByName(config.handler, config.options);
    const sim = runReplay(script, { ...options, ...(faultHandler ? { faultHandler } : {}) }).output;
    return diffReplayOutputs(script, expected, sim);
  };
  // The handler every other script runs under (the kernel test matrix's, classic by default).
  const matrixIsClassic =
    matrixHandlerName() === 'classic' && Object.keys(matrixHandlerOptions()).length === 0;

  for (const f of scripts) {
    const known = KNOWN_DIFFERENCES[f];
    if (known === undefined) {
      it(f, () => expect(diffFor(f)).toBeNull(), 120_000);
      continue;
    }
    // A known difference is tied to the design: the configuration the host runs matches, and the ones
    // that model another Linux behaviour differ exactly where the entry says (see its cause).
    it(`${f} matches under ${describeHandlerConfig(known.matchesUnder)}`, () => {
      expect(diffFor(f, known.matchesUnder)).toBeNull();
    }, 120_000);
    for (const config of known.differsUnder) {
      // Under a matrix handler the matrix's own run of the other scripts is what is checked; the
      // classic-handler assertions run in the default run.
      it.runIf(matrixIsClassic)(
        `${f} differs under ${describeHandlerConfig(config)} at ${known.firstDiff}: ${known.what}`,
        () => {
          const diff = diffFor(f, config);
          expect(diff).not.toBeNull();
          expect(diff?.startsWith(known.firstDiff)).toBe(true);
        },
        120_000,
      );
    }
  }

  it('catches a simulator configured unlike the host (fault-around off)', () => {
    const script = readFileSync(`${dir}fault-around.script`, 'utf8');
    const expected = readFileSync(`${dir}fault-around.out`, 'utf8');
    const sim = runReplay(script, { ...options, files: { ...options.files, faultAroundPages: 1 } }).output;
    expect(diffReplayOutputs(script, expected, sim)).toMatch(/^op 4 \(line 6\): `pagemap 0 64`/);
  });
});
