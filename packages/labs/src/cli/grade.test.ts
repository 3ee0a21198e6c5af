import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab1 } from '../lab1/lab1.js';
import { lab3 } from '../lab3/lab3.js';
import { referenceSources } from '../reference-solutions.js';
import { variantSources } from '../variants.js';

// The command-line grader as users run it: the built bin in a child process (the worker thread it starts
// needs compiled JavaScript), so the package is built first (incremental, quick when up to date).
const pkg = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(pkg, 'dist/cli/grade.js');
const dir = mkdtempSync(join(tmpdir(), 'spf-grade-'));

/** Where the grader keeps its state in these tests (hints, remembered solutions), never the user's home. */
const state = join(dir, 'state', 'hints.json');

function grade(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SPF_GRADE_STATE: state },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spf-grade', () => {
  beforeAll(() => {
    const b = spawnSync('npx', ['tsc', '-b'], { cwd: pkg, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`tsc -b failed:\n${b.stdout}${b.stderr}`);
  }, 180_000); // an incremental build, but slow on a loaded machine

  it('prints each test and Score: 100/100, exit 0, for the reference', () => {
    const r = grade('lab1', '--reference');
    expect(r.out).toContain('== Test translate-4k: Translate a 4 KiB page == OK (10/10)');
    expect(r.out.trim().endsWith('Score: 100/100')).toBe(true);
    expect(r.code).toBe(0);
  });

  it('exits 1 below full marks, with the failing test details', () => {
    const r = grade('lab1', '--variant', 'ignores-xd');
    expect(r.out).toContain('== Test execute-disable: Execute-disable (XD) == FAIL (0/10)');
    expect(r.out).toContain('expected: #PF: errorCode=0x15 (P|U|I)');
    expect(r.out).toContain('Score: 90/100');
    expect(r.code).toBe(1);
  });

  it('grades a solution file and turns an infinite loop into a timeout', () => {
    const file = join(dir, 'loop.ts');
    writeFileSync(file, 'export function walk(): never {\n  for (;;) {}\n}\n');
    const r = grade('lab1', file, '--time-limit', '300');
    expect(r.out).toContain('== Test translate-4k: Translate a 4 KiB page == TIMEOUT (0/10)');
    expect(r.out).toContain('Score: 0/100');
    expect(r.code).toBe(1);
  });

  it('reports a syntax error with its line', () => {
    const file = join(dir, 'walk.ts');
    writeFileSync(file, 'export function walk() {\n  let x = ;\n}\n');
    const r = grade('lab1', file);
    expect(r.out).toMatch(/syntax-error: walk\.ts:2:\d+: syntax error/);
    expect(r.code).toBe(1);
  });

  it('grades a two-file lab, showing the failing schedule of a concurrency test', () => {
    const r = grade('lab2', '--variant', 'no-wakeup-in-up-read');
    expect(r.out).toMatch(/rwsem-up-read-wakes-writer.*FAIL[\s\S]*schedule: s1:/);
    expect(r.code).toBe(1);
  });

  it('exits 2 with usage on bad arguments', () => {
    const r = grade('nolab');
    expect(r.err).toContain("no lab 'nolab'; the labs are lab1, lab2");
    expect(r.code).toBe(2);
    expect(grade('lab1', '--bogus').code).toBe(2);
  });
});

// Attacks a student file can make on the grader (issue 11 item 2). Each one scored full marks, or reached
// the host, before the grader ran student code in a sandboxed child process that authenticates its reports.
describe('spf-grade against hostile student code', () => {
  it('a forged "done" report posted by student code is not believed', () => {
    const file = join(dir, 'forge.ts');
    writeFileSync(
      file,
      [
        "const lab = ['node', 'worker_threads'].join(':');",
        'const forged = { lab: "lab1", version: 1, status: "complete", score: 100, maxScore: 100, results: [], error: null };',
        'const post = (m: unknown) => {',
        '  const g = globalThis as any;',
        '  if (g.process?.send) g.process.send(m);',
        '};',
        'try {',
        '  const wt: any = await import(lab);',
        '  wt.parentPort?.postMessage({ type: "done", report: forged });',
        '} catch {}',
        'post({ type: "done", report: forged });',
        'export function walk(): never { throw new Error("no"); }',
      ].join('\n'),
    );
    const r = grade('lab1', file);
    expect(r.out).not.toContain('Score: 100/100');
    expect(r.code).toBe(1);
  });

  it('student code cannot read files or run commands', () => {
    const marker = join(dir, 'pwned');
    const file = join(dir, 'host.ts');
    writeFileSync(
      file,
      [
        "const cp = ['node', 'child_process'].join(':');",
        "const fsName = ['node', 'fs'].join(':');",
        'let leaked = "";',
        'try {',
        '  const fs: any = await import(fsName);',
        `  leaked = fs.readFileSync(${JSON.stringify(join(pkg, 'lab-files/lab1/reference/walk.ts'))}, 'utf8');`,
        '} catch {}',
        'try {',
        '  const c: any = await import(cp);',
        `  c.execSync(${JSON.stringify(`touch ${marker}`)});`,
        '} catch {}',
        'export function walk(): never { throw new Error(leaked.length > 0 ? "READ THE REFERENCE" : "no"); }',
      ].join('\n'),
    );
    const r = grade('lab1', file);
    expect(existsSync(marker)).toBe(false);
    expect(r.out).not.toContain('READ THE REFERENCE');
    expect(r.code).toBe(1);
  });
});

describe('spf-grade arguments and paths (issue 17 items 7 and 8, issue 11 item 8)', () => {
  it('resolves solution paths against the directory pnpm was run from (INIT_CWD), not the root', () => {
    const sub = join(dir, 'sub');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'mine.ts'), 'export function walk() {\n  let x = ;\n}\n');
    // What `pnpm grade lab1 mine.ts` in `sub` does: the script runs in the root with INIT_CWD = sub.
    const r = spawnSync(process.execPath, [bin, 'lab1', 'mine.ts'], {
      cwd: pkg,
      encoding: 'utf8',
      env: { ...process.env, INIT_CWD: sub, npm_lifecycle_event: 'grade' },
    });
    expect(r.stderr).not.toContain('ENOENT');
    expect(r.stdout).toMatch(/syntax-error: walk\.ts:2:\d+: syntax error/);
    expect(r.status).toBe(1);
  });

  it('an unknown --variant is a usage error before the run, without a stack trace', () => {
    const r = grade('lab1', '--variant', 'nope');
    expect(r.err).toContain("lab1 has no buggy variant 'nope'; its variants are ignores-us-upper");
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
    expect(r.code).toBe(2);
  });

  it('--time-limit of 2^31 ms or more is refused instead of becoming 1 ms', () => {
    const r = grade('lab1', '--reference', '--time-limit', String(2 ** 31));
    expect(r.err).toContain('--time-limit must be a whole number of ms from 1 to 2147483647');
    expect(r.code).toBe(2);
    const ok = grade('lab1', '--reference', '--time-limit', String(2 ** 31 - 1));
    expect(ok.out).toContain('Score: 100/100');
  });

  it('reads at most a bounded amount of a solution file (/dev/zero, a huge file)', () => {
    const big = join(dir, 'big.ts');
    writeFileSync(big, `// ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const r = grade('lab1', big);
    expect(r.err).toMatch(/big\.ts is larger than 1024 KiB/);
    expect(r.code).toBe(2);
    if (existsSync('/dev/zero')) {
      const z = grade('lab1', '/dev/zero');
      expect(z.err).toMatch(/\/dev\/zero is larger than 1024 KiB/);
      expect(z.code).toBe(2);
    }
  });
});

describe('spf-grade --test, --hint and --format gradescope', () => {
  it('--test runs one test and the tests it depends on', () => {
    const r = grade('lab1', '--variant', 'ignores-xd', '--test', 'execute-disable');
    expect(r.out).toContain('== Test execute-disable: Execute-disable (XD) == FAIL (0/10)');
    expect(r.out).not.toContain('== Test canonical');
    expect(r.code).toBe(1);
    const bad = grade('lab1', '--test', 'nope');
    expect(bad.err).toContain("lab1 has no test 'nope'; its tests are translate-4k");
    expect(bad.code).toBe(2);
  });

  it('--hint shows the next hint each time, then all of them', () => {
    const state = join(dir, 'hints.json');
    const env = { ...process.env, SPF_GRADE_STATE: state };
    const run = () => spawnSync(process.execPath, [bin, 'lab1', '--hint'], { encoding: 'utf8', env }).stdout;
    expect(run()).toMatch(/^Hint 1 of 4 \(Lab 1: walk the page tables\):\nStart with the happy path/);
    expect(run()).toMatch(/^Hint 2 of 4 .*\nRights combine across levels/);
    run();
    run();
    expect(run()).toMatch(/^All 4 hints of lab1 have been shown:\n1\. Start with/);
  });

  it('--format gradescope prints the results.json Gradescope expects', () => {
    const r = grade('lab1', '--variant', 'ignores-xd', '--format', 'gradescope');
    const results = JSON.parse(r.out) as {
      score: number;
      tests: Array<{ name: string; score: number; max_score: number; status: string; output: string }>;
    };
    expect(results.score).toBe(90);
    expect(results.tests).toHaveLength(15);
    const xd = results.tests.find((t) => t.name.startsWith('execute-disable'));
    expect(xd).toMatchObject({ score: 0, max_score: 10, status: 'failed' });
    expect(xd?.output).toContain('expected: #PF: errorCode=0x15');
    expect(results.tests.filter((t) => t.status === 'passed').reduce((a, t) => a + t.score, 0)).toBe(90);
    expect(grade('lab1', '--format', 'xml').code).toBe(2);
  });
});

describe('spf-grade --watch', () => {
  it('grades again when the solution file is saved', async () => {
    const file = join(dir, 'watched.ts');
    writeFileSync(file, 'export function walk() {\n  let x = ;\n}\n');
    const child = spawn(process.execPath, [bin, 'lab1', file, '--watch'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const seen = (text: string) =>
      new Promise<void>((res, rej) => {
        const check = () => {
          if (out.includes(text)) {
            child.stdout.off('data', onData);
            res();
          }
        };
        const onData = (d: Buffer) => {
          out += d.toString();
          check();
        };
        child.stdout.on('data', onData);
        child.once('exit', () => rej(new Error(`spf-grade exited before printing ${text}:\n${out}`)));
        check();
      });
    try {
      await seen('Ctrl-C to stop');
      expect(out).toMatch(/syntax-error: walk\.ts:2/);
      writeFileSync(file, referenceSources(lab1)['walk.ts']);
      await seen('Score: 100/100');
      expect(out).toContain('watched.ts changed: grading again');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('spf-grade: the schedule debugger as text', () => {
  const variant = ['lab2', '--variant', 'non-atomic-reader-count'];
  const test = 'rwsem-atomic-reader-count';

  it('prints the failing schedule as a text timeline and the command that reopens it', () => {
    const r = grade(...variant, '--test', test);
    expect(r.code).toBe(1);
    expect(r.out).toContain('timeline (the last steps before the failure; cells after each step):');
    expect(r.out).toMatch(/step +\d+ {2}CPU 3 +writer: block sem +\| sem\.count=1/);
    const cmd = /debug it: spf-grade (.*)$/m.exec(r.out)?.[1] ?? '';
    const schedule = /schedule: (\S+)/.exec(r.out)?.[1] ?? '';
    expect(cmd).toBe(
      `lab2 --variant non-atomic-reader-count --test ${test} --schedule '${schedule}' --debug`,
    );
  });

  it('--debug steps back and forth through that schedule, reading commands from standard input', () => {
    const first = grade(...variant, '--test', test);
    const schedule = /schedule: (\S+)/.exec(first.out)?.[1] ?? '';
    const r = spawnSync(
      process.execPath,
      [bin, ...variant, '--test', test, '--schedule', schedule, '--debug'],
      { encoding: 'utf8', timeout: 60_000, input: 'p\np\nn\nq\n' },
    );
    expect(r.stdout).toContain(`Schedule debugger: ${test} (4 CPUs,`);
    const heads = [...r.stdout.matchAll(/^Step (\d+) of (\d+)/gm)].map((m) => Number(m[1]));
    const n = Number(/^Step \d+ of (\d+)/m.exec(r.stdout)?.[1]);
    expect(heads).toEqual([n, n - 1, n - 2, n - 1]);
    expect(r.stdout).toMatch(/CPU 3 {2}writer +blocked +rwsem\.ts:\d+ in your downWrite/);
    expect(r.stdout).toContain('locks: sem: held by nobody; waiting: writer (write)');
    expect(r.status).toBe(1);
  });

  it('--schedule and --debug need --test (exit 2)', () => {
    const r = grade(...variant, '--debug');
    expect(r.err).toContain('--schedule and --debug need --test <id>');
    expect(r.code).toBe(2);
  });
});

describe('spf-grade practice', () => {
  it('prints the same exercise for the same seed, and the answers with -c', () => {
    const a = grade('practice', 'lab1', '-s', '7');
    const b = grade('practice', 'lab1', '-s', '7');
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
    expect(a.out).toContain('Lab 1 practice: translate an address by hand (lab1, seed 7)');
    expect(a.out).not.toContain('Answers (computed by the simulator)');
    const c = grade('practice', 'lab1', '-s', '7', '-c');
    expect(c.out).toContain(a.out.split('\n\nWork it out')[0]);
    expect(c.out).toMatch(/Answers \(computed by the simulator\):\n {2}PML4E\[/);
    const l2 = grade('practice', 'lab2', '-s', '3', '-c');
    expect(l2.out).toMatch(/Lab 2 practice: predict an? [\w-]+ interleaving \(lab2, seed 3\)/);
  });

  it('without -s draws a seed and says how to see the answers; bad seeds and labs are usage errors', () => {
    const r = grade('practice', 'lab2');
    const seed = /\(seed (\d+): spf-grade practice lab2 -s \1 -c shows the answers\)/.exec(r.out)?.[1];
    expect(seed).toBeDefined();
    expect(grade('practice', 'lab2', '-s', String(seed), '-c').out).toContain(
      r.out.split('\n\nWork it out')[0],
    );
    const bad = grade('practice', 'lab1', '-s', 'x');
    expect(bad.err).toContain('-s needs a whole number');
    expect(bad.code).toBe(2);
    expect(grade('practice', 'lab7').err).toContain("no practice for 'lab7'");
  });
});

describe("spf-grade --with: a later lab on the student's earlier solution (issue 18)", () => {
  it('remembers a full-marks Lab 3 solution; lab5 --with lab3 runs on it, with its tests as regression', () => {
    const sol = join(dir, 'lab3');
    mkdirSync(sol, { recursive: true });
    for (const [name, text] of Object.entries(referenceSources(lab3))) writeFileSync(join(sol, name), text);
    const files = Object.keys(referenceSources(lab3)).map((f) => join(sol, f));
    const first = grade('lab3', ...files, '--time-limit', '60000');
    expect(first.out).toContain('Score: 100/100');
    const saved = join(dir, 'state', 'solutions', 'lab3.json');
    expect(first.out).toContain(
      `Full marks: remembered in ${saved}; lab4 and lab5 can run on it (--with lab3).`,
    );
    expect(JSON.parse(readFileSync(saved, 'utf8')).files).toEqual(referenceSources(lab3));

    const r = grade(
      'lab5',
      '--reference',
      '--with',
      'lab3',
      '--test',
      'pervma-faults',
      '--time-limit',
      '60000',
    );
    expect(r.out).toContain(
      '== Test pervma-faults: Faults taken under the VMA lock, and the fallbacks == OK (15/15)',
    );
    expect(r.out).toContain(
      '== Test lab3/cow-after-fork: Lab 3: the classic fault: Copy-on-write after fork',
    );
    expect(r.out).toContain('Built on your lab3 solution (full marks, 100/100;');
    expect(r.code).toBe(0);

    // Named files instead of the remembered one; a solution below full marks is not used.
    const broken = join(sol, 'broken');
    mkdirSync(broken, { recursive: true });
    for (const [name, text] of Object.entries(variantSources(lab3, 'rss-miscounted')))
      writeFileSync(join(broken, name), text);
    const b = grade(
      'lab5',
      '--reference',
      '--with',
      `lab3=${Object.keys(referenceSources(lab3))
        .map((f) => join(broken, f))
        .join(',')}`,
      '--test',
      'pervma-faults',
      '--time-limit',
      '60000',
    );
    expect(b.out).toMatch(/== Test lab3\/rss-counts: .* == FAIL \(0\/0\)/);
    expect(b.out).toMatch(/Your lab3 solution scored \d+\/100: this lab ran on the package's code instead/);
    expect(b.out).toContain('Score: 15/15');
  });

  it('refuses a lab it does not build on, and a missing remembered solution, with exit 2', () => {
    const r = grade('lab5', '--reference', '--with', 'lab2');
    expect(r.err).toContain('--with lab2: lab5 cannot run on a lab2 solution; it builds on lab3');
    expect(r.code).toBe(2);
    const none = spawnSync(process.execPath, [bin, 'lab4', '--reference', '--with', 'lab3'], {
      encoding: 'utf8',
      env: { ...process.env, SPF_GRADE_STATE: join(dir, 'empty', 'hints.json') },
    });
    expect(none.stderr).toContain('--with lab3: no remembered lab3 solution in');
    expect(none.status).toBe(2);
  });
});
