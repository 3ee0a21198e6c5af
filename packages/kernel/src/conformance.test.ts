import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { classicFaultHandler } from '@spf/fault-classic';
import { describe, expect, it } from 'vitest';
import { faultHandlerByName } from './fault-handlers.js';
import { diffReplayOutputs } from './replay/diff.js';
import { generateScript } from './replay/generate.js';
import { probeHost, runOnHost } from './replay/host.js';
import { runReplay } from './run-replay.js';
import { MAX_MEMORY } from './system.js';
import {
  describeHandlerConfig,
  FILE_CORPUS_OPTIONS,
  KNOWN_FILE_DIFFERENCES,
} from './test-support/file-known-differences.js';
import { matrixHandlerName } from './test-support/handler-matrix.js';

/**
 * Conformance with the real kernel: seeded generated scripts (mmap, munmap, mprotect, touch, maps and
 * pagemap over overlapping ranges, so VMAs split and merge) run on the simulator and, through the C
 * harness, on the host's Linux kernel; the outputs must be identical line for line. The simulator's zero
 * page follows the host's (probeHost tells whether a read fault maps it).
 */
const probe = probeHost();
const available = probe.linux && probe.cc && probe.reason === undefined;
if (!available) {
  console.warn(
    `\n!!! SKIPPING the real-kernel conformance suite: ${probe.reason ?? 'the host cannot run the harness'}.\n` +
      '!!! It needs Linux and a C compiler (cc); the simulator is NOT being compared with Linux.\n',
  );
}

const SUITES: {
  readonly name: string;
  readonly seeds: number;
  readonly opts: Parameters<typeof generateScript>[1];
}[] = [
  { name: 'default mix (64-page window)', seeds: 300, opts: {} },
  { name: 'small window, long scripts (dense splits and merges)', seeds: 150, opts: { window: 16, ops: 80 } },
  {
    name: 'private memory only, large ranges',
    seeds: 120,
    opts: { shared: false, maxPages: 24, window: 128 },
  },
];

/**
 * Under another fault handler of the kernel's test matrix (SPF_FAULT_HANDLER), every generated script of
 * every suite must print exactly what the classic handler prints (which the default run compares with the
 * host above), and the first {@link HOST_SEEDS_UNDER_MATRIX} seeds of each suite are still compared with the
 * host directly. Running all of them through the host harness again per handler would cost minutes of CI
 * per handler (the harness run, not the simulator, is most of this suite's time).
 */
const HOST_SEEDS_UNDER_MATRIX = 25;
const handler = matrixHandlerName();

// Registered only under a matrix handler: under classic the host suite below runs instead.
if (handler !== 'classic') {
  describe(`replay conformance under the ${handler} fault handler`, () => {
    for (const suite of SUITES) {
      it(`${suite.name}: ${suite.seeds} generated scripts print what the classic handler prints${available ? `, the first ${HOST_SEEDS_UNDER_MATRIX} also what the host prints` : ''}`, () => {
        const failures: string[] = [];
        for (let seed = 1; seed <= suite.seeds && failures.length < 3; seed++) {
          const script = generateScript(seed, suite.opts);
          const zeroPage = available ? probe.zeroPage : true;
          const classic = runReplay(script, { zeroPage, faultHandler: classicFaultHandler }).output;
          const sim = runReplay(script, { zeroPage }).output;
          let diff = diffReplayOutputs(script, classic, sim, { expected: 'classic', actual: handler });
          if (diff === null && available && seed <= HOST_SEEDS_UNDER_MATRIX) {
            diff = diffReplayOutputs(script, runOnHost(script), sim);
          }
          if (diff !== null) failures.push(`seed ${seed}:\n${diff}\n--- full script:\n${script}`);
        }
        expect(failures, failures.join('\n\n')).toEqual([]);
      }, 300_000); // it runs the simulator twice per script: a guard against a hang, not a timing claim
    }
  });
}

describe.skipIf(!available)('conformance with the host Linux kernel', () => {
  if (available && !probe.pfnVisible) {
    console.warn(
      '!!! /proc/self/pagemap hides PFNs here (not root): the host prints A where it maps the zero page.',
    );
  }
  // Under another handler the describe above replaces these three (it also compares with the host).
  for (const suite of handler === 'classic' ? SUITES : []) {
    it(`${suite.name}: ${suite.seeds} generated scripts give identical output`, () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= suite.seeds && failures.length < 3; seed++) {
        const script = generateScript(seed, suite.opts);
        const host = runOnHost(script);
        const sim = runReplay(script, { zeroPage: probe.zeroPage }).output;
        const diff = diffReplayOutputs(script, host, sim);
        if (diff !== null) failures.push(`seed ${seed}:\n${diff}\n--- full script:\n${script}`);
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    }, 300_000); // a guard against a hang, not a timing claim: on a loaded 2-core machine the harness runs take minutes
  }

  const mem = probe.memory;
  const matchable = mem !== undefined && mem.ramPages * 4096 <= MAX_MEMORY && mem.ramPages >= 16;
  it.runIf(matchable)(
    "overcommit: mappings around the host's RAM size get the host's errno when the simulator has its RAM and mode",
    () => {
      if (mem === undefined) return;
      const ram = mem.ramPages + (mem.overcommitMode === 'guess' ? mem.swapPages : 0);
      const script = [
        `mmap 0 ${ram + 1} rw private anon`,
        `mmap 0 ${ram} rw private anon`,
        `munmap 0 ${ram}`,
        `mmap 0 ${ram + 1} r private anon`,
        `mprotect 0 ${ram + 1} rw`,
        `munmap 0 ${ram + 1}`,
        `mmap 0 ${ram + 1} r shared anon`,
        '',
      ].join('\n');
      const host = runOnHost(script);
      const sim = runReplay(script, {
        zeroPage: probe.zeroPage,
        memory: mem.ramPages * 4096,
        overcommit: { mode: mem.overcommitMode, swapPages: mem.swapPages, ratio: mem.overcommitRatio },
      }).output;
      expect(diffReplayOutputs(script, host, sim)).toBeNull();
      if (mem.overcommitMode === 'guess') {
        expect(sim).toBe(
          'mmap ENOMEM\nmmap ok\nmunmap ok\nmmap ok\nmprotect ENOMEM\nmunmap ok\nmmap ENOMEM\n',
        );
      }
    },
    120_000,
  );

  /**
   * Files mixed with anonymous memory (the corpus's generated scripts, run on this host now): the simulator,
   * set up with the host's read_ahead_kb and fault-around, must print what the host prints. Right after a
   * major fault the host's fault-around races its own I/O completion (conformance/host-file-outputs/
   * README.md), so the host runs a script up to three times and the simulator must match one of those
   * outputs. A seed listed in KNOWN_FILE_DIFFERENCES runs under the handler its entry says matches the host
   * (the per-VMA-lock design with file VMAs, what the host runs), the others under the classic handler.
   */
  const files = probe.files;
  const simFiles = files && {
    readAheadKb: files.readAheadKb ?? 128,
    faultAroundPages: files.faultAroundPages,
  };
  /** How the simulator's output for `script` differs from the host's now (null: identical in one of 3 runs). */
  const diffWithHost = (script: string, known?: (typeof KNOWN_FILE_DIFFERENCES)[string]): string | null => {
    const config = known?.matchesUnder;
    const sim = runReplay(script, {
      zeroPage: probe.zeroPage,
      files: simFiles,
      ...(config ? { faultHandler: faultHandlerByName(config.handler, config.options) } : {}),
    }).output;
    let diff: string | null = 'not run';
    for (let run = 0; run < 3 && diff !== null; run++)
      diff = diffReplayOutputs(script, runOnHost(script), sim);
    return diff;
  };
  it.runIf(files !== undefined && handler === 'classic')(
    'files and anonymous memory: 60 generated scripts give identical output',
    () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= 60 && failures.length < 3; seed++) {
        const script = generateScript(seed, FILE_CORPUS_OPTIONS);
        const diff = diffWithHost(script, KNOWN_FILE_DIFFERENCES[`gen-${seed}.script`]);
        if (diff !== null) failures.push(`seed ${seed}:\n${diff}\n--- full script:\n${script}`);
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    },
    300_000,
  );

  // The hand-written scripts among the known differences, run on this host now, under the configuration
  // their entry says matches it (the generated ones are covered by the test above).
  for (const [name, known] of Object.entries(KNOWN_FILE_DIFFERENCES).filter(([n]) => !n.startsWith('gen-'))) {
    it.runIf(files !== undefined && handler === 'classic')(
      `files: ${name} prints what the host prints under ${describeHandlerConfig(known.matchesUnder)}`,
      () => {
        const script = readFileSync(
          fileURLToPath(new URL(`../conformance/host-file-outputs/${name}`, import.meta.url)),
          'utf8',
        );
        expect(diffWithHost(script, known)).toBeNull();
      },
      300_000,
    );
  }

  it('catches a simulator that disagrees with the host (the zero page switched the wrong way)', () => {
    const script = 'mmap 0 2 rw private anon\ntouch 0 r\ntouch 0 w\npagemap 0 2\n';
    const host = runOnHost(script);
    const wrong = runReplay(script, { zeroPage: !probe.zeroPage }).output;
    const diff = diffReplayOutputs(script, host, wrong);
    expect(diff).not.toBeNull();
    expect(diff).toContain('op 3 (line 3): `touch 0 w`');
  });
});
