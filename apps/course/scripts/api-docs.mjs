#!/usr/bin/env node
// Generates the API reference of every @spf package with typedoc into public/api/<package>/, before
// `astro build` copies public/ into the site. A package typedoc cannot document gets a page that says why,
// so one broken package never breaks the course build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(app, '..', '..');
const typedoc = join(root, 'node_modules', '.bin', 'typedoc');
const packages = ['machine', 'pagetable', 'locks', 'vma', 'fault-classic', 'kernel', 'labs'];
const tmp = mkdtempSync(join(tmpdir(), 'spf-typedoc-'));

for (const p of packages) {
  const dir = join(root, 'packages', p);
  const out = join(app, 'public', 'api', p);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  if (!existsSync(join(dir, 'typedoc.json'))) {
    writeFileSync(join(out, 'index.html'), page(p, 'this package has no typedoc.json yet.'));
    continue;
  }
  // The package's own typedoc.json, written elsewhere, plus links back to the course in the header.
  const options = join(tmp, `${p}.json`);
  writeFileSync(
    options,
    JSON.stringify({
      extends: [join(dir, 'typedoc.json')],
      out,
      skipErrorChecking: true,
      disableSources: true,
      logLevel: 'Error',
      navigationLinks: { 'spf course': '/', Labs: '/labs/' },
    }),
  );
  // typedoc exits 0 on some option errors: also look for "[error]" in its output.
  const r = spawnSync(typedoc, ['--options', options], { cwd: dir, encoding: 'utf8' });
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0 || /\[error\]/.test(log) || !existsSync(join(out, 'index.html'))) {
    const why = (log || String(r.error ?? '')).trim().split('\n').slice(0, 20).join('\n');
    writeFileSync(join(out, 'index.html'), page(p, `typedoc failed:\n${why}`));
    console.warn(`api-docs: @spf/${p}: typedoc failed; wrote a placeholder page`);
  } else {
    console.log(`api-docs: @spf/${p} -> public/api/${p}/`);
  }
}
rmSync(tmp, { recursive: true, force: true });

function page(p, why) {
  const esc = (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
  return `<!doctype html><meta charset="utf-8"><title>@spf/${p} API</title><h1>@spf/${p}</h1><p>The API reference could not be generated: </p><pre>${esc(why)}</pre><p><a href="/">Back to the course</a></p>\n`;
}
