#!/usr/bin/env node
// Generates the API reference of every @spf package with typedoc into public/api/<package>/, before
// `astro build` copies public/ into the site. A package typedoc cannot document gets a page that says why,
// so one broken package never breaks the course build.
//
// Afterwards every generated page is adjusted for the course:
// - its main column gets `data-pagefind-body`, so Starlight's search (pagefind indexes only marked pages
//   once any page is marked) finds the API reference too;
// - a README link to a sibling package's directory (`../machine`, which typedoc turns into a missing
//   `media/machine`) goes to that package's API reference instead.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(app, '..', '..');
const typedoc = join(root, 'node_modules', '.bin', 'typedoc');
const packages = [
  'machine',
  'pagetable',
  'locks',
  'vma',
  'fault-classic',
  'fault-spec',
  'file-backed',
  'kernel',
  'bench',
  'labs',
];
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
    for (const file of htmlFiles(out)) writeFileSync(file, forCourse(readFileSync(file, 'utf8')));
    console.log(`api-docs: @spf/${p} -> public/api/${p}/`);
  }
}
rmSync(tmp, { recursive: true, force: true });

function htmlFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? htmlFiles(join(dir, e.name)) : e.name.endsWith('.html') ? [join(dir, e.name)] : [],
  );
}

/** One typedoc page, made searchable and with sibling-package links pointing at their API reference. */
function forCourse(html) {
  return html
    .replace('<div class="col-content">', '<div class="col-content" data-pagefind-body>')
    .replace(/href="(?:\.\.\/)*media\/([a-z-]+)\/?"/g, (m, name) =>
      packages.includes(name) ? `href="/api/${name}/"` : m,
    );
}

function page(p, why) {
  const esc = (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
  return `<!doctype html><meta charset="utf-8"><title>@spf/${p} API</title><h1>@spf/${p}</h1><p>The API reference could not be generated: </p><pre>${esc(why)}</pre><p><a href="/">Back to the course</a></p>\n`;
}
