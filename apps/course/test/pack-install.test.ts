import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'sucrase';
import { afterAll, describe, expect, it } from 'vitest';

// The package pages say how to install a package before it is published: pack it with pnpm in a clone and
// npm-install the tarball. This runs the @spf/machine page's commands as written (with SPF set to this
// repository) in a fresh project, then runs the page's example against the installed package.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PAGE = readFileSync(
  fileURLToPath(new URL('../src/content/docs/packages/machine.md', import.meta.url)),
  'utf8',
);
const PNPM_VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).packageManager.replace(
  /^pnpm@/,
  '',
);

/** A directory whose `pnpm` is the pinned pnpm: the one on PATH if it is that version, else through npx. */
function pnpmOnPath(dir: string): string {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim() === PNPM_VERSION) return process.env.PATH ?? '';
  const shim = join(dir, 'bin');
  mkdirSync(shim, { recursive: true });
  writeFileSync(join(shim, 'pnpm'), `#!/bin/sh\nexec npx -y pnpm@${PNPM_VERSION} "$@"\n`);
  chmodSync(join(shim, 'pnpm'), 0o755);
  return `${shim}:${process.env.PATH ?? ''}`;
}

describe('installing a package before publication, as its page says', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spf-pack-'));
  const project = join(dir, 'project');
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(REPO, 'tarballs'), { recursive: true, force: true });
  });

  it('the pnpm-packed tarball installs with npm and runs the page example', () => {
    const blocks = [...PAGE.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
    const commands = blocks.find((b) => b.includes('pnpm pack'));
    expect(commands, 'machine.md has no `pnpm pack` instructions').toBeDefined();
    mkdirSync(project, { recursive: true });
    writeFileSync(
      join(project, 'package.json'),
      '{ "name": "my-project", "private": true, "type": "module" }\n',
    );
    // The page's commands, with SPF pointing at this repository instead of ~/spf; npm stays offline (the
    // tarball has no dependencies outside it).
    const script = (commands as string)
      .replace(/^SPF=.*$/m, `SPF=${JSON.stringify(REPO.replace(/\/$/, ''))}`)
      .replace(/^npm install /m, 'npm install --offline --no-audit --no-fund ');
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, PATH: pnpmOnPath(dir), npm_config_update_notifier: 'false' },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);

    const installed = JSON.parse(
      readFileSync(join(project, 'node_modules/@spf/machine/package.json'), 'utf8'),
    ) as Record<string, Record<string, string> | undefined>;
    expect(JSON.stringify(installed.dependencies ?? {})).not.toContain('workspace:');
    expect(existsSync(join(project, 'node_modules/@spf/machine/dist/index.js'))).toBe(true);

    const example = [...PAGE.matchAll(/```ts\n([\s\S]*?)```/g)][0]?.[1] ?? '';
    const js = transform(example, { transforms: ['typescript'], disableESTransforms: true }).code;
    writeFileSync(join(project, 'example.mjs'), js);
    const run = spawnSync(process.execPath, ['example.mjs'], { cwd: project, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('counter is 1');
  });
});
