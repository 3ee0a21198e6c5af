import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIST, ensureBuilt } from './site.js';

/** The JavaScript a page loads before any lazy import: its module scripts and their static imports. */
function initialScripts(html: string): string[] {
  const seen = new Set<string>();
  const queue = [
    ...html.matchAll(/<script[^>]+src="([^"]+\.js)"/g),
    ...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"/g),
  ].map((m) => m[1]);
  for (const inline of html.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)) {
    for (const m of inline[1].matchAll(/(?:import|from)\s*["']([^"']+\.js)["']/g)) queue.push(m[1]);
  }
  while (queue.length) {
    const src = queue.shift() as string;
    if (seen.has(src) || !src.startsWith('/')) continue;
    seen.add(src);
    const js = readFileSync(join(DIST, src), 'utf8');
    // static imports only: `import"./x.js"` / `from"./x.js"` (dynamic `import("...")` is lazy)
    for (const m of js.matchAll(/(?:^|[;}\s])(?:import|from)\s*["'](\.{1,2}\/[^"']+\.js)["']/g)) {
      queue.push(new URL(m[1], `http://x${src}`).pathname);
    }
  }
  return [...seen];
}

/** Gzipped bytes of the JavaScript a built page loads up front, and which files. */
function initialWeight(page: string): { bytes: number; scripts: string[] } {
  const html = readFileSync(join(DIST, page), 'utf8');
  const scripts = initialScripts(html);
  const inline = [...html.matchAll(/<script(?![^>]*src)[^>]*>([\s\S]*?)<\/script>/g)]
    .map((m) => m[1])
    .join('');
  const bytes =
    scripts.reduce((s, f) => s + gzipSync(readFileSync(join(DIST, f))).length, 0) + gzipSync(inline).length;
  return { bytes, scripts };
}

describe('page weight', () => {
  beforeAll(() => ensureBuilt());

  it('loads at most 300 KiB of gzipped JavaScript up front on the playground (editor, worker and kernel are lazy)', () => {
    const { bytes, scripts } = initialWeight('playground/index.html');
    // What a run costs on top: the playground worker (the whole simulated kernel and the transpiler).
    const worker = readdirSync(join(DIST, '_astro')).filter((f) => /^playground-worker.*\.js$/.test(f));
    const workerBytes = worker.reduce(
      (s, f) => s + gzipSync(readFileSync(join(DIST, '_astro', f))).length,
      0,
    );
    console.log(
      `playground page initial JS: ${(bytes / 1024).toFixed(1)} KiB gzipped (${scripts.join(', ')}); its worker: ${(workerBytes / 1024).toFixed(1)} KiB gzipped (${worker.join(', ')})`,
    );
    expect(worker).toHaveLength(1);
    expect(scripts.some((s) => s.includes('playground-ui') || s.includes('editor'))).toBe(false);
    expect(bytes).toBeLessThanOrEqual(300 * 1024);
  });

  it.each(['lab1', 'lab3', 'lab4', 'lab5', 'lab6', 'lab7'])(
    'loads at most 300 KiB of gzipped JavaScript up front on the %s page (editor and grader are lazy)',
    (lab) => {
      const { bytes, scripts } = initialWeight(`labs/${lab}/index.html`);
      console.log(`${lab} page initial JS: ${(bytes / 1024).toFixed(1)} KiB gzipped (${scripts.join(', ')})`);
      expect(scripts.some((s) => s.includes('editor'))).toBe(false);
      expect(bytes).toBeLessThanOrEqual(300 * 1024);
    },
  );
});
