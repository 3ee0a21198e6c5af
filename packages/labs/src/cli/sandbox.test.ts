import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab1 } from '../lab1/lab1.js';
import { referenceSources } from '../reference-solutions.js';
import { gradeInSandbox } from './sandbox.js';

// The sandboxed grading process on its own: the authentication of its messages, the limits of the process
// (checked with stand-in child scripts that try what student code might), and the memory limits.
const pkg = fileURLToPath(new URL('../../', import.meta.url));
const realChild = join(pkg, 'dist/cli/sandbox-child.js');
const dir = mkdtempSync(join(tmpdir(), 'spf-sandbox-'));

function child(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

beforeAll(() => {
  const b = spawnSync('npx', ['tsc', '-b'], { cwd: pkg, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`tsc -b failed:\n${b.stdout}${b.stderr}`);
}, 180_000); // an incremental build, but slow on a loaded machine
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gradeInSandbox', () => {
  it('grades the reference in the real sandboxed child: full marks', async () => {
    const r = await gradeInSandbox(lab1, referenceSources(lab1), { entry: realChild });
    expect(r.score).toBe(100);
    expect(r.error).toBeNull();
  });

  it('does not believe a report without the run’s secret, and says so', async () => {
    const entry = child(
      'forger.mjs',
      `process.once('message', () => {
        const report = { lab: 'lab1', version: 1, status: 'complete', score: 100, maxScore: 100, results: [], error: null };
        process.send({ secret: 'guessed', message: { type: 'done', report } });
        process.send({ type: 'done', report }, () => process.exit(0));
      });`,
    );
    const r = await gradeInSandbox(lab1, referenceSources(lab1), { entry });
    expect(r.score).toBe(0);
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toMatch(/sent 2 message\(s\) without the run's secret, which were ignored/);
  });

  it('the child process cannot read other files, write, run commands or start workers', async () => {
    const entry = child(
      'prober.mjs',
      `import { readFileSync, writeFileSync } from 'node:fs';
      const tries = {
        read: () => readFileSync('/etc/hostname', 'utf8'),
        write: () => writeFileSync(${JSON.stringify(join(dir, 'written'))}, 'x'),
        spawn: async () => (await import('node:child_process')).execSync('true'),
        worker: async () => new (await import('node:worker_threads')).Worker('0', { eval: true }),
        evaluate: () => new Function('return 1')(),
      };
      process.once('message', async (req) => {
        const out = [];
        for (const [k, f] of Object.entries(tries)) {
          try { await f(); out.push(k + ': allowed'); } catch (e) { out.push(k + ': ' + (e.code ?? e.message)); }
        }
        process.send({ secret: req.secret, message: { type: 'crash', message: out.join('; ') } }, () => process.exit(0));
      });`,
    );
    const r = await gradeInSandbox(lab1, referenceSources(lab1), { entry });
    const msg = r.error?.message ?? '';
    expect(msg).not.toContain(': allowed');
    expect(msg).toContain('read: ERR_ACCESS_DENIED');
    expect(msg).toContain('write: ERR_ACCESS_DENIED');
    expect(msg).toContain('spawn: ERR_ACCESS_DENIED');
    expect(msg).toContain('worker: ERR_ACCESS_DENIED');
    expect(msg).toContain('evaluate: Code generation from strings disallowed');
  });

  it('reports heap exhaustion as running out of memory, not as an infinite loop', async () => {
    const walk =
      'const keep: number[][] = [];\nexport function walk(): never {\n  for (;;) keep.push(new Array(1e5).fill(1));\n}\n';
    const r = await gradeInSandbox(lab1, { 'walk.ts': walk }, { entry: realChild, heapMiB: 64 });
    expect(r.score).toBe(0);
    expect(r.error?.message).toMatch(
      /ran out of memory: the grading process exceeded its 64 MiB JavaScript heap/,
    );
    expect(r.error?.message).not.toMatch(/infinite loop/);
    const first = r.results[0];
    expect(first.status).toBe('error');
    expect(first.message).toMatch(/ran out of memory/);
    expect(r.results.slice(1).every((t) => t.status === 'skipped' && !/timeout/.test(t.message))).toBe(true);
  });

  it('bounds off-heap memory (buffers) too', async () => {
    const walk =
      'const keep: Uint8Array[] = [];\nexport function walk(): never {\n  for (;;) keep.push(new Uint8Array(8 << 20).fill(1));\n}\n';
    const r = await gradeInSandbox(lab1, { 'walk.ts': walk }, { entry: realChild, memoryMiB: 200 });
    expect(r.score).toBe(0);
    expect(r.error?.message, JSON.stringify(r.results[0])).toMatch(/used more than 200 MiB of memory/);
  });

  it('hides process and the network from student code', async () => {
    const walk = [
      'const g = globalThis as any;',
      'export function walk(): never {',
      "  throw new Error('process=' + typeof g.process + ' fetch=' + typeof g.fetch);",
      '}',
    ].join('\n');
    const r = await gradeInSandbox(lab1, { 'walk.ts': walk }, { entry: realChild });
    expect(r.results[0].message).toContain('process=undefined fetch=undefined');
  });
});
