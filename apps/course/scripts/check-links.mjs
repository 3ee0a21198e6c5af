#!/usr/bin/env node
// Checks every internal link of the built course (dist/): each href/src in every HTML page, the Starlight
// pages and the typedoc API reference alike, must name a file that exists, and each #fragment must name an
// id (or <a name>) on the page it points to. Links are resolved the way a browser resolves them against
// the page's URL, and the target is looked up the way scripts/serve.mjs serves it (a directory serves its
// index.html). Run it as `node scripts/check-links.mjs [dist]`: it prints every broken link and exits 1
// if there is one. test/links.test.ts runs it over the built site.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The origin the site is built for (astro.config.mjs `site`): absolute links to it are internal. */
export const SITE_ORIGIN = 'http://localhost:4321';

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'" };

function decodeEntities(s) {
  return s.replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, (m, e) => {
    const k = e.toLowerCase();
    if (k in ENTITIES) return ENTITIES[k];
    if (k.startsWith('#x')) return String.fromCodePoint(Number.parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(Number(k.slice(1)));
    return m;
  });
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function htmlFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...htmlFiles(p));
    else if (entry.name.endsWith('.html')) out.push(p);
  }
  return out;
}

/** The page's URL path as served: dist/a/b/index.html is /a/b/index.html (and its links resolve from /a/b/). */
function urlOf(dist, file) {
  return `/${relative(dist, file).split(sep).join('/')}`;
}

/** Every link-bearing attribute of a page, outside inline scripts, styles and comments. */
function linksOf(html) {
  const text = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<script(?![^>]*\bsrc=)[^>]*>[\s\S]*?<\/script>/gi, '')
    .replace(/<style[^>]*>[\s\S]*?<\/style>/gi, '');
  const out = [];
  for (const tag of text.matchAll(/<(a|link|script|img|iframe|source|area)\b([^>]*)>/gi)) {
    const name = tag[1].toLowerCase();
    const attr = name === 'a' || name === 'link' || name === 'area' ? 'href' : 'src';
    const m = new RegExp(`\\s${attr}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag[2]);
    if (!m) continue;
    const raw = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
    const rel = name === 'link' ? (/\brel\s*=\s*["']?([\w -]+)/i.exec(tag[2])?.[1] ?? '') : '';
    // <link rel="preconnect"/"dns-prefetch"> name hosts, not documents.
    if (/preconnect|dns-prefetch/i.test(rel)) continue;
    out.push({ tag: name, href: raw, rel });
  }
  return out;
}

/** The ids a page defines: id="…" on any element and name="…" on <a>. */
function idsOf(html) {
  const ids = new Set();
  for (const m of html.matchAll(/\sid\s*=\s*("([^"]*)"|'([^']*)')/gi)) ids.add(decodeEntities(m[2] ?? m[3]));
  for (const m of html.matchAll(/<a\b[^>]*\sname\s*=\s*("([^"]*)"|'([^']*)')/gi)) {
    ids.add(decodeEntities(m[2] ?? m[3]));
  }
  return ids;
}

/**
 * Checks the built site in `dist`. Returns every broken link as { page, href, problem }, sorted by page.
 * An empty array means every internal link and anchor resolves.
 */
export function checkLinks(dist) {
  const files = htmlFiles(dist);
  const idCache = new Map();
  const ids = (file) => {
    let s = idCache.get(file);
    if (!s) {
      s = idsOf(readFileSync(file, 'utf8'));
      idCache.set(file, s);
    }
    return s;
  };
  /** What serve.mjs answers for a URL path: the file, or null for a 404. */
  const target = (path) => {
    const f = join(dist, path);
    if (!f.startsWith(dist)) return null;
    if (existsSync(f) && statSync(f).isDirectory()) {
      const index = join(f, 'index.html');
      return existsSync(index) ? { file: index, dir: true } : null;
    }
    return existsSync(f) ? { file: f, dir: false } : null;
  };
  const broken = [];
  for (const file of files) {
    const html = readFileSync(file, 'utf8');
    const page = urlOf(dist, file);
    const base = new URL(page, SITE_ORIGIN);
    for (const { tag, href, rel } of linksOf(html)) {
      if (href === '' || /^(mailto|tel|javascript|data|blob):/i.test(href)) continue;
      // The 404 page is served for every missing URL; its canonical URL (/404/) is never visited.
      if (page === '/404.html' && /canonical/i.test(rel)) continue;
      let url;
      try {
        url = new URL(href, base);
      } catch {
        broken.push({ page, href, problem: 'not a valid URL' });
        continue;
      }
      if (url.origin !== SITE_ORIGIN) continue; // external: not ours to check here
      const path = safeDecode(url.pathname);
      const t = target(path);
      if (!t) {
        broken.push({ page, href, problem: `no page or file at ${path} (404)` });
        continue;
      }
      // A directory URL without its trailing slash serves index.html, but the page's relative links
      // then resolve one level too high.
      if (t.dir && !path.endsWith('/') && tag === 'a') {
        broken.push({ page, href, problem: `${path} is a directory: link to ${path}/ instead` });
        continue;
      }
      const fragment = safeDecode(url.hash.slice(1));
      if (fragment && t.file.endsWith('.html') && !ids(t.file).has(fragment)) {
        broken.push({
          page,
          href,
          problem: `${relative(dist, t.file)} has no element with id "${fragment}"`,
        });
      }
    }
  }
  return broken.sort((a, b) => a.page.localeCompare(b.page) || a.href.localeCompare(b.href));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = process.argv[2] ?? fileURLToPath(new URL('../dist', import.meta.url));
  if (!existsSync(join(dist, 'index.html'))) {
    console.error(`check-links: ${dist} has no index.html: build the course first (pnpm build)`);
    process.exit(2);
  }
  const broken = checkLinks(dist);
  for (const b of broken) console.log(`${b.page}: ${b.href} — ${b.problem}`);
  console.log(
    broken.length === 0
      ? 'check-links: every internal link and anchor resolves'
      : `check-links: ${broken.length} broken link(s)`,
  );
  process.exit(broken.length === 0 ? 0 : 1);
}
