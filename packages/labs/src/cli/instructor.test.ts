import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab1 } from '../lab1/lab1.js';
import { referenceSources } from '../reference-solutions.js';
import { starterSources } from '../variants.js';

// Instructor mode as packages/labs/README.md and the course's instructors page document it: hidden tests in
// a directory outside the handout (`--tests`), Gradescope's results.json (`--format gradescope`), and the
// shipped Gradescope scripts (gradescope/run_autograder) run as Gradescope runs them.
const pkg = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(pkg, 'bin/spf-grade.js');
// Inside the package, so that the example test's `import ... from '@spf/labs'` resolves as it does in an
// autograder where @spf/labs is installed next to the tests.
const root = mkdtempSync(join(pkg, '.instructor-'));

type Results = {
  score: number;
  tests: Array<{ name: string; score: number; max_score: number; status: string }>;
};

beforeAll(() => {
  const b = spawnSync('npx', ['tsc', '-b'], { cwd: pkg, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`tsc -b failed:\n${b.stdout}${b.stderr}`);
  mkdirSync(join(root, 'source/tests'), { recursive: true });
  mkdirSync(join(root, 'submission'));
  for (const f of ['run_autograder', 'config.env'])
    copyFileSync(join(pkg, 'gradescope', f), join(root, 'source', f));
  copyFileSync(join(pkg, 'gradescope/tests/hidden-lab1.mjs'), join(root, 'source/tests/hidden-lab1.mjs'));
}, 180_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function runAutograder(walk: string): Results {
  writeFileSync(join(root, 'submission/walk.ts'), walk);
  const r = spawnSync('bash', [join(root, 'source/run_autograder')], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, AUTOGRADER: root, SPF_GRADE: bin },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(root, 'results/results.json'), 'utf8')) as Results;
}

describe('instructor mode', () => {
  it('run_autograder grades a submission with the hidden tests into results/results.json', () => {
    const full = runAutograder(referenceSources(lab1)['walk.ts']);
    const hidden = full.tests.find((t) => t.name.includes('hidden-2m-offset'));
    expect(hidden).toMatchObject({ score: 10, max_score: 10, status: 'passed' });
    expect(full.score).toBe(110);
    expect(full.tests).toHaveLength(lab1.tests.length + 1);
    // A 2 MiB page that loses its offset: the lab's own tests miss nothing else, the hidden test fails.
    const starter = runAutograder(starterSources(lab1)['walk.ts']);
    expect(starter.score).toBe(0);
    expect(starter.tests.find((t) => t.name.includes('hidden-2m-offset'))?.status).toBe('failed');
  });

  it('spf-grade --tests <dir> --format gradescope is the documented command', () => {
    // Run as a user would, from the submission directory (not under a package script).
    const env = { ...process.env };
    delete env.npm_lifecycle_event;
    delete env.INIT_CWD;
    writeFileSync(join(root, 'submission/walk.ts'), referenceSources(lab1)['walk.ts']);
    const r = spawnSync(
      process.execPath,
      [bin, 'lab1', 'walk.ts', '--tests', '../source/tests', '--format', 'gradescope'],
      { cwd: join(root, 'submission'), encoding: 'utf8', timeout: 60_000, env },
    );
    const res = JSON.parse(r.stdout) as Results;
    expect(res.score).toBe(110);
    expect(r.status).toBe(0);
    // In text, the hidden test is listed with the others.
    const text = spawnSync(process.execPath, [bin, 'lab1', 'walk.ts', '--tests', '../source/tests'], {
      cwd: join(root, 'submission'),
      encoding: 'utf8',
      timeout: 60_000,
      env,
    });
    expect(text.stdout).toContain(
      '== Test hidden-2m-offset: Hidden: a 2 MiB page keeps the low 21 bits of the address == OK (10/10)',
    );
    expect(text.stdout).toContain('Score: 110/110');
  });

  it('refuses a tests directory that is missing or exports no valid tests, before grading (exit 2)', () => {
    const missing = spawnSync(process.execPath, [bin, 'lab1', '--reference', '--tests', join(root, 'nope')], {
      encoding: 'utf8',
    });
    expect(missing.stderr).toContain('cannot read the tests directory');
    expect(missing.status).toBe(2);
    const bad = join(root, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 't.mjs'),
      "export const tests = [{ id: 'translate-4k', title: 'x', points: 1, category: 'functionality', run() {} }];\n",
    );
    const dup = spawnSync(process.execPath, [bin, 'lab1', '--reference', '--tests', bad], {
      encoding: 'utf8',
    });
    expect(dup.stderr).toContain("duplicate test id 'translate-4k'");
    expect(dup.status).toBe(2);
  });
});
