#!/usr/bin/env node
// Generates the API reference of every @spf package with typedoc into public/api/<package>/, before
// `astro build` copies public/ into the site. A package typedoc cannot document gets a page that says why,
// so one broken package never breaks the course build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(app, '..', '..');
const typedoc = join(root, 'node_modules', '.bin', 'typedoc');
const packages = ['machine', 'pagetable', 'locks', 'vma', 'fault-classic', 'kernel', 'labs'];

for (const p of packages) {
  const dir = join(root, 'packages', p);
  const out = join(app, 'public', 'api', p);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  if (!existsSync(join(dir, 'typedoc.json'))) {
    writeFileSync(join(out, 'index.html'), page(p, 'this package has no typedoc.json yet.'));
    continue;
  }
  const r = spawnSync(
    typedoc,
    [
      '--options',
      'typedoc.json',
      '--out',
      out,
      '--skipErrorChecking',
      '--logLevel',
      'Error',
      '--disableSources',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  if (r.status !== 0 || !existsSync(join(out, 'index.html'))) {
    const why = (r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(0, 20).join('\n');
    writeFileSync(join(out, 'index.html'), page(p, `typedoc failed:\n${why}`));
    console.warn(`api-docs: @spf/${p}: typedoc failed; wrote a placeholder page`);
  } else {
    console.log(`api-docs: @spf/${p} -> public/api/${p}/`);
  }
}

function page(p, why) {
  const esc = (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
  return `<!doctype html><meta charset="utf-8"><title>@spf/${p} API</title><h1>@spf/${p}</h1><p>The API reference could not be generated: </p><pre>${esc(why)}</pre><p><a href="/">Back to the course</a></p>\n`;
}
