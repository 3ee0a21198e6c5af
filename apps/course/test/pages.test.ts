import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DESIGN_PACKAGES, isBuilt, plannedPackages } from '../src/project-status.js';
import { DIST, ensureBuilt } from './site.js';

// Honest pages: every page says what runs today and what is planned, and nothing unbuilt is shown as
// something to run.
const DOCS = fileURLToPath(new URL('../src/content/docs/', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), ext) : ext.test(e.name) ? [join(dir, e.name)] : [],
  );
}

const sources = files(DOCS, /\.mdx?$/).map((f) => ({
  page: relative(DOCS, f),
  text: readFileSync(f, 'utf8'),
}));
const planned = plannedPackages().map((p) => p.name);
const built = DESIGN_PACKAGES.filter((p) => isBuilt(p.name)).map((p) => p.name);
const mentions = (line: string, name: string) => new RegExp(`@spf/${name}(?![\\w-])`).test(line);

describe('honest pages (sources)', () => {
  it('knows which packages are built, from the repository', () => {
    expect(built).toContain('machine');
    for (const p of planned) expect(isBuilt(p)).toBe(false);
  });

  it.each(sources)('$page: every code block line naming a package says whether it runs', ({ text }) => {
    const wrong: string[] = [];
    for (const block of text.matchAll(/```[\w-]*\n([\s\S]*?)```/g)) {
      for (const line of block[1].split('\n')) {
        for (const name of planned) {
          // An unbuilt package may appear in code only on a line that says it is planned: never in an
          // import, an install command, or a diagram of what runs.
          if (mentions(line, name) && !/\bplanned\b/.test(line))
            wrong.push(`${name} (not built): ${line.trim()}`);
        }
        for (const name of built) {
          if (mentions(line, name) && /\bplanned\b/.test(line)) wrong.push(`${name} (built): ${line.trim()}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it.each(sources)('$page: links only to pages of packages that exist', ({ text }) => {
    for (const name of planned) {
      expect(text).not.toMatch(new RegExp(`\\]\\(/(packages|api)/${name}/`));
    }
  });
});

describe('honest pages (built site)', () => {
  beforeAll(() => ensureBuilt());
  const pages = () =>
    files(DIST, /\.html$/)
      .map((f) => relative(DIST, f))
      .filter((f) => !f.startsWith('api/') && f !== '404.html');

  it('every page opens with what runs today, and lists the packages not built yet', () => {
    const list = pages();
    expect(list.length).toBeGreaterThanOrEqual(10);
    const missing: string[] = [];
    for (const page of list) {
      const html = readFileSync(join(DIST, page), 'utf8');
      const note = /<aside[^>]*data-project-status[^>]*>([\s\S]*?)<\/aside>/.exec(html)?.[1];
      if (!note?.includes('Runs today:')) {
        missing.push(`${page}: no "Runs today" note`);
        continue;
      }
      const notBuilt = /data-planned-packages[^>]*>([\s\S]*?)<\/p>/.exec(note)?.[1] ?? '';
      for (const name of planned) {
        if (!notBuilt.includes(`@spf/${name}<`))
          missing.push(`${page}: does not say @spf/${name} is not built yet`);
      }
      for (const name of built) {
        if (notBuilt.includes(`@spf/${name}<`))
          missing.push(`${page}: says the built @spf/${name} is not built`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the home page has the status of every package of the design', () => {
    const html = readFileSync(join(DIST, 'index.html'), 'utf8');
    for (const p of DESIGN_PACKAGES) {
      const row = new RegExp(
        `<tr[^>]*data-package="${p.name}"[^>]*data-built="${isBuilt(p.name)}"[^>]*>[\\s\\S]*?</tr>`,
      ).exec(html);
      expect(row, `row of @spf/${p.name}`).not.toBeNull();
      expect(row?.[0]).toContain(isBuilt(p.name) ? 'runs today' : 'planned, not built yet');
    }
  });
});
