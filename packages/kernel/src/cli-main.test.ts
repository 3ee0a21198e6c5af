import type { FaultHandlerFactory } from '@spf/fault-classic';
import { FaultSpecConfigError, perVmaLock } from '@spf/fault-spec';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CliIo, formatSpeculativeStats, MAX_SCRIPT_BYTES, runCli, runCliAsync } from './cli-main.js';
import { designEntry, FAULT_HANDLERS } from './fault-handlers.js';
import { nodeCliIo } from './node-cli-io.js';
import { runReplay } from './run-replay.js';

function io(files: Record<string, string> = {}) {
  const out = { stdout: '', stderr: '', stdoutCalls: 0, written: new Map<string, string>() };
  const impl: CliIo = {
    stdout: (s) => {
      out.stdout += s;
      out.stdoutCalls++;
    },
    stderr: (s) => {
      out.stderr += s;
    },
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw new Error(`ENOENT: no such file ${p}`);
      return f;
    },
    writeFile: (p, t) => {
      if (p.startsWith('/nonexistent/')) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      out.written.set(p, t);
    },
    chromeTrace: (events, cpus) => ({
      traceEvents: [{ name: 'n', cpus, events: events.length }],
      displayTimeUnit: 'ns',
    }),
  };
  return { out, impl };
}

describe('the spf command', () => {
  it('--help prints the usage and exits 0', () => {
    const { out, impl } = io();
    expect(runCli(['--help'], impl)).toBe(0);
    expect(out.stdout).toContain('spf replay [--no-zero-page] [--read-ahead-kb KB] [--fault-around-pages N]');
    expect(out.stdout).toContain('spf run <scenario>');
  });

  it('replay reads a file or stdin and prints the observations', () => {
    const { out, impl } = io({ '-': 'mmap 0 1 rw private anon\ntouch 0 r\n', 's.txt': 'touch 0 r\n' });
    expect(runCli(['replay', '--no-zero-page'], impl)).toBe(0);
    expect(out.stdout).toBe('mmap ok\ntouch ok min=1 maj=0 val=0\n');
    expect(runCli(['replay', 's.txt'], impl)).toBe(0);
    expect(out.stdout).toContain('touch SIGSEGV MAPERR\n');
  });

  it('replay of a committed host file script with the host settings prints exactly what the host printed', () => {
    const dir = new URL('../conformance/host-file-outputs/', import.meta.url);
    const script = readFileSync(new URL('fault-around.script', dir), 'utf8');
    const host = readFileSync(new URL('fault-around.out', dir), 'utf8');
    const { out, impl } = io({ 'fa.script': script });
    const args = [
      'replay',
      '--no-zero-page',
      '--read-ahead-kb',
      '8192',
      '--fault-around-pages',
      '16',
      'fa.script',
    ];
    expect(runCli(args, impl)).toBe(0);
    expect(out.stdout).toBe(host);
    // Fault-around switched off: the first read fault maps one page, not the host's 16.
    const off = io({ 'fa.script': script });
    expect(runCli(['replay', '--no-zero-page', '--fault-around-pages', '1', 'fa.script'], off.impl)).toBe(0);
    expect(off.out.stdout).not.toBe(host);
    expect(runCli(['replay', '--fault-around-pages', '0', 'fa.script'], off.impl)).toBe(2);
    expect(off.out.stderr).toContain('--fault-around-pages must be from 1 to 512, got 0');
  });

  it('a malformed replay line exits 2 with an error naming the line', () => {
    const { out, impl } = io({ 'bad.txt': 'mmap 0 1 rw private anon\nmunmap 1\n' });
    expect(runCli(['replay', 'bad.txt'], impl)).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe(
      'spf replay: bad.txt: line 2: munmap expects <off> <npages>; got "munmap 1" (missing <npages>)\n',
    );
  });

  it('bad usage exits 2', () => {
    const { out, impl } = io();
    expect(runCli(['replay', 'missing.txt'], impl)).toBe(2);
    expect(out.stderr).toContain('cannot read missing.txt');
    expect(runCli(['run', 'nope'], impl)).toBe(2);
    expect(runCli(['run', 'scaling', '--threads', 'x'], impl)).toBe(2);
    expect(runCli(['frobnicate'], impl)).toBe(2);
  });

  it('run cow-fork prints the demo and writes a Chrome trace', () => {
    const { out, impl } = io();
    expect(runCli(['run', 'cow-fork', '--trace', 'cow.json'], impl)).toBe(0);
    expect(out.stdout).toContain('child:  wrote 0xcc to page 0: 1 fault (copy-on-write copy)');
    expect(out.stdout).toContain('parent: page 0 still reads 0x10');
    const trace = JSON.parse(out.written.get('cow.json') ?? '{}');
    expect(trace.traceEvents[0].cpus).toBe(2);
    expect(trace.traceEvents[0].events).toBeGreaterThan(100);
  });

  it('run scaling reports the faults taken', () => {
    const { out, impl } = io();
    expect(runCli(['run', 'scaling', '--threads', '2', '--pages', '8', '--churn'], impl)).toBe(0);
    expect(out.stdout).toContain('faults: 16\n');
    expect(out.stdout).toMatch(/mmap\/munmap pairs meanwhile: [1-9]/);
  });

  it('run cow-fork whose parent is OOM-killed prints the kernel log and exits 1', () => {
    const { out, impl } = io();
    // 65,500 pages fit the 256 MiB machine's overcommit limit but not its free frames.
    expect(runCli(['run', 'cow-fork', '--pages', '65500'], impl)).toBe(1);
    expect(out.stderr).toMatch(/kernel: parent\[1\]: killed by SIGKILL \(OOM\) at 0x/);
    expect(out.stderr).toContain('spf run cow-fork: process 1 (parent) was killed by SIGKILL (OOM)\n');
  });

  it('run cow-fork larger than the machine fails at mmap (overcommit heuristic) and exits 1', () => {
    const { out, impl } = io();
    expect(runCli(['run', 'cow-fork', '--pages', '100000'], impl)).toBe(1);
    // Under the test matrix's speculative handlers, the handler's (empty) statistics follow this line.
    expect(out.stdout.startsWith('parent: mmap of 100000 pages failed with ENOMEM\n')).toBe(true);
    expect(out.stderr).toBe('spf run cow-fork: process 1 (parent) exited with 1\n');
  });

  it('usage errors are found before the run and exit 2: a seed out of range, an unwritable trace path', () => {
    const bad = io();
    expect(runCli(['run', 'scaling', '--threads', '1', '--seed', '4294967296'], bad.impl)).toBe(2);
    expect(bad.out.stderr).toBe(
      'spf: --seed must be from 0 to 4294967295, got 4294967296\nrun spf --help for usage\n',
    );
    const trace = io();
    expect(runCli(['run', 'cow-fork', '--trace', '/nonexistent/dir/t.json'], trace.impl)).toBe(2);
    expect(trace.out.stdout).toBe(''); // nothing ran
    expect(trace.out.stderr).toContain('spf: cannot write the trace to /nonexistent/dir/t.json: ENOENT');
    const pages = io();
    expect(runCli(['run', 'cow-fork', '--pages', '0'], pages.impl)).toBe(2);
    expect(pages.out.stderr).toContain('pages must be an integer from 1 to 1048576, got 0');
  });

  it('replay streams its output in chunks, the same text runReplay builds', () => {
    const script = `mmap 0 4 rw private anon\n${'touch 1 w\ntouch 2 r\n'.repeat(3000)}`;
    const { out, impl } = io({ 's.txt': script });
    expect(runCli(['replay', 's.txt'], impl)).toBe(0);
    expect(out.stdout).toBe(runReplay(script).output);
    expect(out.stdoutCalls).toBeGreaterThan(1);
  });

  it('a malformed 10 MB line is quoted cut short in the error', () => {
    const { out, impl } = io({ 'big.txt': `mmap 0 1 rw private anon\ntouch ${'9'.repeat(10_000_000)} r\n` });
    expect(runCli(['replay', 'big.txt'], impl)).toBe(2);
    expect(out.stderr.length).toBeLessThan(1000);
    expect(out.stderr).toContain('line 2: touch expects <page> r|w; got "touch 9999');
    expect(out.stderr).toContain('… (9999808 more characters)');
  });

  it.runIf(process.platform === 'linux')(
    `replay stops reading an endless input after ${MAX_SCRIPT_BYTES} bytes and exits 2`,
    () => {
      let stderr = '';
      const impl: CliIo = { ...nodeCliIo, stdout: () => {}, stderr: (s) => (stderr += s) };
      expect(runCli(['replay', '/dev/zero'], impl)).toBe(2);
      expect(stderr).toBe(
        `spf replay: /dev/zero holds more than ${MAX_SCRIPT_BYTES} bytes, the most a replay script may hold; split the script\n`,
      );
    },
  );
});

/**
 * A registry with one more, test-only design: per-VMA locks under another name, whose options say to refuse at
 * once (`refuse=true`, like a contradictory combination) or at boot (`refuseWithoutZeroPage=true` with
 * --no-zero-page, like Dufour's SPF without pte_special).
 */
const seenOptions: unknown[] = [];
/** How many systems booted with the test design. */
const booted = { count: 0 };
const handlers = [
  ...FAULT_HANDLERS,
  designEntry(
    'test-design',
    'test only',
    (o?: { refuse?: boolean; refuseWithoutZeroPage?: boolean }): FaultHandlerFactory => {
      seenOptions.push(o);
      if (o?.refuse === true) throw new FaultSpecConfigError('test-design', ['refuse'], 'asked to refuse');
      return (env) => {
        if (o?.refuseWithoutZeroPage === true && !env.useZeroPage) {
          throw new FaultSpecConfigError(
            'test-design',
            ['refuseWithoutZeroPage', 'no zero page'],
            'asked to',
          );
        }
        booted.count++;
        return perVmaLock()(env);
      };
    },
  ),
];

describe('spf --fault-handler', () => {
  it('--help lists the registered handlers', () => {
    const { out, impl } = io();
    expect(runCli(['--help'], impl)).toBe(0);
    expect(out.stdout).toContain(
      `fault handlers (--fault-handler, default classic): ${FAULT_HANDLERS.map((h) => h.name).join(', ')}\n`,
    );
  });

  it('replay runs the script under the named handler and prints what classic prints', () => {
    const script = 'mmap 0 4 rw private anon\ntouch 0 w\ntouch 1 w\ntouch 1 r\ntouch 9 r\npagemap 0 4\n';
    const a = io({ 's.txt': script });
    expect(runCli(['replay', '--fault-handler', 'classic', 's.txt'], a.impl, handlers)).toBe(0);
    const b = io({ 's.txt': script });
    const before = booted.count;
    expect(runCli(['replay', '--fault-handler', 'test-design', 's.txt'], b.impl, handlers)).toBe(0);
    expect(booted.count).toBe(before + 1);
    expect(b.out.stdout).toBe(a.out.stdout);
    expect(b.out.stdout).toBe(runReplay(script).output);
  });

  it('run scaling names the handler and prints the share handled speculatively and the abort reasons', () => {
    const { out, impl } = io();
    const argv = ['run', 'scaling', '--threads', '2', '--pages', '8', '--fault-handler', 'pervma'];
    expect(runCli(argv, impl, handlers)).toBe(0);
    expect(out.stdout).toContain('2 faulting thread(s), 8 pages each, pervma handler, mmap_lock rwsem\n');
    expect(out.stdout).toContain('  faults: 16\n');
    // Each region's first write finds no anon_vma (allocating one needs mmap_lock), the other 7 are lockless.
    expect(out.stdout).toContain('  handled speculatively: 14 of 16 faults (87.5%), 16 attempts\n');
    expect(out.stdout).toContain('  aborts (fell back to mmap_lock): VMA_LOCK_ABORT 2\n');
    const classic = io();
    const classicArgv = ['run', 'scaling', '--threads', '2', '--pages', '8', '--fault-handler', 'classic'];
    expect(runCli(classicArgv, classic.impl, handlers)).toBe(0);
    expect(classic.out.stdout).toContain('classic handler');
    expect(classic.out.stdout).not.toContain('speculatively');
  });

  it('run cow-fork under each handler shows the same demo and, for a speculative one, its statistics', () => {
    const demo = (stdout: string) => stdout.slice(0, stdout.indexOf('vmstat:'));
    const classic = io();
    expect(runCli(['run', 'cow-fork', '--fault-handler', 'classic'], classic.impl)).toBe(0);
    expect(classic.out.stdout).toContain('child:  wrote 0xcc to page 0: 1 fault (copy-on-write copy)\n');
    expect(classic.out.stdout).not.toContain('speculatively');
    const expected: Record<string, string> = {
      // The parent fills 4 pages (the first allocates the page tables), the child's write breaks COW and the
      // parent's write reuses its page: 6 faults. Lespinasse's first fault finds no PUD and aborts.
      lespinasse:
        '  handled speculatively: 5 of 6 faults (83.3%), 6 attempts\n  aborts (fell back to mmap_lock): SPF_ABORT_PUD 1\n',
      pervma:
        '  handled speculatively: 5 of 6 faults (83.3%), 6 attempts\n  aborts (fell back to mmap_lock): VMA_LOCK_ABORT 1\n',
      // Both processes are single-threaded: patch 22's mm_users == 1 shortcut skips the speculative path.
      dufour:
        '  handled speculatively: 0 of 6 faults (0.0%), 0 attempts\n  aborts (fell back to mmap_lock): none\n',
    };
    for (const [name, stats] of Object.entries(expected)) {
      const r = io();
      expect(runCli(['run', 'cow-fork', '--fault-handler', name], r.impl), name).toBe(0);
      expect(demo(r.out.stdout), name).toBe(demo(classic.out.stdout));
      expect(r.out.stdout, name).toContain('vmstat: pgfault=6 cow-copies=1 cow-reuses=1\n');
      expect(r.out.stdout, name).toContain(`${name} handler:\n${stats}`);
    }
    const noShortcut = io();
    const argv = [
      'run',
      'cow-fork',
      '--fault-handler',
      'dufour',
      '--spec-option',
      'singleThreadShortcut=false',
    ];
    expect(runCli(argv, noShortcut.impl)).toBe(0);
    expect(demo(noShortcut.out.stdout)).toBe(demo(classic.out.stdout));
    expect(noShortcut.out.stdout).toContain(
      '  handled speculatively: 5 of 6 faults (83.3%), 6 attempts\n  aborts (fell back to mmap_lock): spf_vma_noanon 1\n',
    );
    const bad = io();
    expect(
      runCli(['run', 'cow-fork', '--fault-handler', 'dufour', '--spec-option', 'bogus=1'], bad.impl),
    ).toBe(2);
    expect(bad.out.stdout).toBe('');
    expect(bad.out.stderr).toContain('spf: dufour fault handler: bogus is refused: no such option');
  });

  it('replays a file script with speculative file faults (fileVmas) and prints what the classic path prints', () => {
    const script = readFileSync(
      new URL('../conformance/host-file-outputs/fault-around.script', import.meta.url),
      'utf8',
    );
    const classic = io({ 's.txt': script });
    expect(runCli(['replay', '--fault-handler', 'classic', 's.txt'], classic.impl)).toBe(0);
    const variants = [
      [
        '--fault-handler',
        'dufour',
        '--spec-option',
        'fileVmas=true',
        '--spec-option',
        'singleThreadShortcut=false',
      ],
      ['--fault-handler', 'lespinasse', '--spec-option', 'fileVmas=true'],
    ];
    for (const v of variants) {
      const r = io({ 's.txt': script });
      expect(runCli(['replay', ...v, 's.txt'], r.impl), v.join(' ')).toBe(0);
      expect(r.out.stdout, v.join(' ')).toBe(classic.out.stdout);
    }
  });

  it('passes --spec-option values to the design, typed and nested', () => {
    seenOptions.length = 0;
    const { impl } = io({ 's.txt': 'mmap 0 1 rw private anon\n' });
    const argv = ['replay', '--fault-handler', 'test-design', '--spec-option', 'x=true'];
    expect(runCli([...argv, '--spec-option', 'checks.a.b=false', 's.txt'], impl, handlers)).toBe(0);
    expect(seenOptions).toEqual([{ x: true, checks: { 'a.b': false } }]);
  });

  it('bad handler names and options exit 2 before anything runs, naming the value and the choices', () => {
    const cases: [string[], string][] = [
      [
        ['replay', '--fault-handler', 'dufuor', 's.txt'],
        `spf: --fault-handler must be one of ${[...FAULT_HANDLERS.map((h) => h.name), 'test-design'].join(', ')}, not dufuor\n`,
      ],
      [['run', 'scaling', '--fault-handler'], 'spf: --fault-handler expects a value\n'],
      [
        ['run', 'scaling', '--spec-option', 'x=1'],
        `spf: --spec-option needs --fault-handler: choose the handler the option is for (${[...FAULT_HANDLERS.map((h) => h.name), 'test-design'].join(', ')})\n`,
      ],
      [
        ['replay', '--fault-handler', 'classic', '--spec-option', 'x=1', 's.txt'],
        'spf: the classic fault handler takes no options, got x; drop them or choose a speculative handler\n',
      ],
      [
        ['run', 'scaling', '--fault-handler', 'test-design', '--spec-option', 'x'],
        'spf: --spec-option expects key=value (for example specPgtableAlloc=true or checks.ptlTrylock=false), got "x"\n',
      ],
      [
        ['replay', '--fault-handler', 'test-design', '--spec-option', 'refuse=true', 's.txt'],
        'spf: test-design fault handler: refuse is refused: asked to refuse\n',
      ],
      [
        [
          'replay',
          '--no-zero-page',
          '--fault-handler',
          'test-design',
          '--spec-option',
          'refuseWithoutZeroPage=true',
          's.txt',
        ],
        'spf: test-design fault handler: refuseWithoutZeroPage with no zero page is refused: asked to\n',
      ],
      [
        [
          'run',
          'scaling',
          '--threads',
          '1',
          '--fault-handler',
          'test-design',
          '--spec-option',
          'refuse=true',
        ],
        'spf: test-design fault handler: refuse is refused: asked to refuse\n',
      ],
    ];
    for (const [argv, message] of cases) {
      const { out, impl } = io({ 's.txt': 'mmap 0 1 rw private anon\ntouch 0 w\n' });
      expect(runCli(argv, impl, handlers), argv.join(' ')).toBe(2);
      expect(out.stdout, argv.join(' ')).toBe('');
      expect(out.stderr, argv.join(' ')).toBe(`${message}run spf --help for usage\n`);
    }
  });

  it('formatSpeculativeStats: nothing for classic, reasons most frequent first', () => {
    expect(formatSpeculativeStats(null, 10)).toBe('');
    expect(formatSpeculativeStats({ attempts: 10, handled: 6, aborts: { b: 1, a: 1, c: 2, d: 0 } }, 10)).toBe(
      '  handled speculatively: 6 of 10 faults (60.0%), 10 attempts\n  aborts (fell back to mmap_lock): c 2, a 1, b 1\n',
    );
    expect(formatSpeculativeStats({ attempts: 0, handled: 0, aborts: {} }, 0)).toContain('(0.0%)');
  });
});

describe('spf bench (forwarded to @spf/bench)', () => {
  const bufferIo = () => {
    const out = { stdout: '', stderr: '' };
    const io = {
      stdout: (s: string) => {
        out.stdout += s;
      },
      stderr: (s: string) => {
        out.stderr += s;
      },
      readFile: () => '',
      writeFile: () => {},
      chromeTrace: () => ({ traceEvents: [] }) as never,
    };
    return { io, out };
  };

  it('hands the arguments after bench to @spf/bench and returns its exit status', async () => {
    const { io, out } = bufferIo();
    let seen: readonly string[] = [];
    const status = await runCliAsync(['bench', 'run', 'E7', '--quick'], io, {
      loadBench: async () => ({
        runBenchCli: async (argv, bio) => {
          seen = argv;
          bio.stdout('ran\n');
          return 7;
        },
      }),
    });
    expect(status).toBe(7);
    expect(seen).toEqual(['run', 'E7', '--quick']);
    expect(out.stdout).toBe('ran\n');
  });

  it('hands spf calibrate to @spf/bench as its calibrate command', async () => {
    const { io } = bufferIo();
    let seen: readonly string[] = [];
    const status = await runCliAsync(['calibrate', '--out', 'p.json'], io, {
      loadBench: async () => ({
        runBenchCli: async (argv) => {
          seen = argv;
          return 0;
        },
      }),
    });
    expect(status).toBe(0);
    expect(seen).toEqual(['calibrate', '--out', 'p.json']);
  });

  it('says how to install @spf/bench when it is missing, and exits 2', async () => {
    const { io, out } = bufferIo();
    expect(await runCliAsync(['bench', 'list'], io, { loadBench: async () => null })).toBe(2);
    expect(out.stderr).toMatch(
      /@spf\/bench is not installed. Install it beside @spf\/kernel \(npm install @spf\/bench\)/,
    );
  });

  it('leaves every other command to runCli', async () => {
    const { io, out } = bufferIo();
    expect(await runCliAsync(['--help'], io)).toBe(0);
    expect(out.stdout).toContain('spf bench <command>');
  });
});
