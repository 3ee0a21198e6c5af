import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLinks } from '../scripts/check-links.mjs';
import { DIST, ensureBuilt } from './site.js';

describe('link checker', () => {
  let dir: string;
  const page = (path: string, body: string) => {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `<!doctype html><html><head><title>t</title></head><body>${body}</body></html>`);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'spf-links-'));
    page('index.html', '<h2 id="top-section">x</h2>');
    page('404.html', '<link rel="canonical" href="http://localhost:4321/404/">');
    page(
      'labs/index.html',
      [
        '<a href="/">home</a>',
        '<a href="/#top-section">anchor that exists</a>',
        '<a href="/#nowhere">anchor that does not</a>',
        '<a href="/api/machine/index">the old sidebar link</a>',
        '<a href="/api/machine">directory without its slash</a>',
        '<a href="../api/machine/classes/Machine.html#constructor">relative, exists</a>',
        '<a href="https://example.org/missing">external: not checked</a>',
        '<a href="mailto:x@example.org">mail</a>',
        '<a href="http://localhost:4321/gone/">absolute link to our own site</a>',
        '<img src="/missing.png">',
        '<script>const s = \'<a href="/in-a-script">\';</script>',
        '<!-- <a href="/in-a-comment"> -->',
        '<pre>&lt;a href="/in-code"&gt;</pre>',
      ].join('\n'),
    );
    page('api/machine/index.html', '<a href="media/machine">typedoc media link</a><a href="#">top</a>');
    page('api/machine/classes/Machine.html', '<a id="constructor"></a><a href="../index.html">up</a>');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports missing pages, missing anchors and slash-less directory links, and nothing else', () => {
    const broken = checkLinks(dir).map((b) => `${b.page} ${b.href}`);
    expect(broken).toEqual([
      '/api/machine/index.html media/machine',
      '/labs/index.html /#nowhere',
      '/labs/index.html /api/machine',
      '/labs/index.html /api/machine/index',
      '/labs/index.html /missing.png',
      '/labs/index.html http://localhost:4321/gone/',
    ]);
  });

  it('says what is wrong with each', () => {
    const byHref = new Map(checkLinks(dir).map((b) => [b.href, b.problem]));
    expect(byHref.get('/#nowhere')).toBe('index.html has no element with id "nowhere"');
    expect(byHref.get('/api/machine')).toBe('/api/machine is a directory: link to /api/machine/ instead');
    expect(byHref.get('/api/machine/index')).toBe('no page or file at /api/machine/index (404)');
  });
});

describe('the built course', () => {
  beforeAll(() => ensureBuilt());

  it('has no broken internal link or anchor (pages and API reference)', () => {
    const broken = checkLinks(DIST);
    expect(broken.map((b) => `${b.page}: ${b.href} — ${b.problem}`)).toEqual([]);
  });
});
