import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../scripts/serve.mjs';
import { ensureBuilt } from './site.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI) {
  // In CI the browser tests are part of the proof: a missing browser is a failure, not a skip.
  throw new Error(`${CHROMIUM} is missing in CI; .ci/run installs Debian's chromium before the tests`);
}
if (!hasChromium) {
  console.warn(
    `\n*** SKIPPING the course's end-to-end tests: ${CHROMIUM} is missing. Install it with ` +
      '`apt-get install -y chromium` (CI does). ***\n',
  );
}
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const reference = readFileSync(join(REPO, 'packages/labs/lab-files/lab1/reference/walk.ts'), 'utf8');
// The README's screenshots are rewritten only on request (SPF_UPDATE_SCREENSHOTS=1), so that a test run
// leaves the git tree clean; otherwise they go to a temporary directory.
const SHOTS = process.env.SPF_UPDATE_SCREENSHOTS
  ? join(REPO, 'docs/screenshots')
  : mkdtempSync(join(tmpdir(), 'spf-screenshots-'));
const SCREENSHOT = join(SHOTS, 'lab1-graded.png');

/** WCAG 2.x contrast of every text in the editor against what is painted behind it (computed styles). */
type ContrastSample = { text: string; cls: string; color: string; background: string; ratio: number };

describe.skipIf(!hasChromium)('course site in Chromium', () => {
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    server = await serve({ port: 0 });
    base = `http://localhost:${(server.address() as AddressInfo).port}`;
    profile = mkdtempSync(join(tmpdir(), 'spf-chromium-'));
    // A fresh profile per run (launchPersistentContext is how playwright takes --user-data-dir).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await context?.close();
    await new Promise((r) => server?.close(r));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function openLab1(): Promise<void> {
    await page.goto(`${base}/labs/lab1/`);
    await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
    // The type checker's worker has started and answered: it no longer competes with timed grading runs.
    await page.waitForSelector('[data-workbench][data-types="checked"]', { timeout: 30_000 });
  }

  /** Replaces the editor's text the way a student pasting code would. */
  async function setCode(code: string): Promise<void> {
    await page.click('.cm-content');
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(code);
  }

  async function runTests(via: 'button' | 'keyboard' = 'button'): Promise<string> {
    if (via === 'button') await page.click('[data-action="run"]');
    else {
      await page.click('.cm-content');
      await page.keyboard.press('Control+Enter');
    }
    await page.waitForFunction(
      () => {
        const b = document.querySelector<HTMLButtonElement>('[data-action="run"]');
        const s = document.querySelector('[data-score]')?.textContent ?? '';
        return b && !b.disabled && s.startsWith('Score');
      },
      null,
      { timeout: 20_000 },
    );
    return (await page.textContent('[data-score]')) ?? '';
  }

  const savedCode = () =>
    page.evaluate(() => {
      const k = Object.keys(localStorage).find((x) => x.startsWith('spf-course:lab:lab1:'));
      return k
        ? (JSON.parse(localStorage.getItem(k) ?? '{}').files?.['walk.ts'] as string | undefined)
        : undefined;
    });

  it('grades the starter low, and keeps the reference solution locked', async () => {
    await openLab1();
    expect(await page.isDisabled('[data-action="reference"]')).toBe(true);
    // The reference is not shipped before it is earned: neither in the page nor in what it has loaded.
    expect(await page.content()).not.toContain('Lab 1 reference solution');
    const score = await runTests();
    expect(score).toBe('Score: 0/100');
    expect(await page.getAttribute('li[data-test="translate-4k"]', 'data-status')).toBe('fail');
    expect(await page.getAttribute('li[data-test="translate-huge"]', 'data-status')).toBe('skipped');
    expect(await page.textContent('li[data-test="translate-huge"]')).toContain(
      "parent test 'translate-4k' did not pass",
    );
  });

  it('gives full marks to a correct solution within 2 s and unlocks the reference (run with Ctrl-Enter)', async () => {
    await setCode(reference);
    const score = await runTests('keyboard');
    expect(await savedCode()).toBe(reference); // Ctrl-Enter ran the tests and inserted no newline
    expect(score).toBe('Score: 100/100');
    const ms = Number(await page.getAttribute('[data-workbench]', 'data-last-run-ms'));
    expect(ms).toBeLessThan(2000);
    expect(await page.locator('li[data-status="pass"]').count()).toBe(15);
    expect(await page.isDisabled('[data-action="reference"]')).toBe(false);
    await page.click('[data-action="reference"]');
    // Fetched on demand (a separate chunk), so wait for it.
    await page.waitForSelector('[data-reference] pre.wb-ref-code');
    expect(await page.textContent('[data-reference]')).toContain('Lab 1 reference solution');
  });

  it('shows the named test failing with expected and actual for a buggy solution', async () => {
    const buggy = reference.replace('if (regs.nxe && (e & XD) !== 0n) executable = false;', '');
    await setCode(buggy);
    const score = await runTests();
    expect(score).toBe('Score: 90/100');
    const li = page.locator('li[data-test="execute-disable"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.locator('[data-expected]').textContent()).toContain('#PF: errorCode=0x15 (P|U|I)');
    expect(await li.locator('[data-actual]').textContent()).toContain('ok: pa=0x40000000');
    expect(await li.textContent()).toContain('a user fetch from an XD page faults');
    expect(await li.locator('.wb-notes').textContent()).toMatch(
      /How the reference walk handles this access:[\s\S]*PTE\[003\].*XD/,
    );
    mkdirSync(SHOTS, { recursive: true });
    // A tall viewport with the workbench at the top: editor, score and the failing test's details.
    await page.setViewportSize({ width: 1280, height: 1500 });
    await page.evaluate(() => {
      const top = document.querySelector('[data-workbench]')?.getBoundingClientRect().top ?? 0;
      window.scrollBy(0, top - 80);
    });
    await page.screenshot({ path: SCREENSHOT });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it('shows an exception with its line', async () => {
    await setCode('export function walk(): never {\n  const x = 1;\n  throw new Error(`broken ${x}`);\n}\n');
    await runTests();
    const li = page.locator('li[data-test="translate-4k"]');
    expect(await li.getAttribute('data-status')).toBe('error');
    expect(await li.textContent()).toContain('walk.ts:3: your code threw Error: broken 1');
  });

  it('reports a syntax error with its line', async () => {
    await setCode('export function walk() {\n  let x = ;\n}\n');
    await runTests();
    expect(await page.textContent('[data-error]')).toMatch(
      /^Syntax error\. walk\.ts:2:\d+: syntax error: Unexpected token/,
    );
  });

  it('stops an infinite loop with a timeout and keeps the page and editor working', async () => {
    await setCode('export function walk(): never {\n  for (;;) {}\n}\n');
    const t0 = Date.now();
    await runTests();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await page.getAttribute('li[data-test="translate-4k"]', 'data-status')).toBe('timeout');
    expect(await page.textContent('[data-status-line]')).toContain('ran too long');
    // The page is responsive and the editor still takes input.
    expect(await page.evaluate(() => 6 * 7)).toBe(42);
    await page.click('.cm-content');
    await page.keyboard.press('Control+End');
    await page.keyboard.type('// still editable');
    expect(await savedCode()).toContain('// still editable');
  });

  it('keeps the code across a reload', async () => {
    await setCode(`// my work in progress\n${reference}`);
    await page.reload();
    await page.waitForSelector('[data-workbench][data-ready="true"]');
    expect(await page.locator('.cm-content').textContent()).toContain('// my work in progress');
    expect(await savedCode()).toBe(`// my work in progress\n${reference}`);
  });

  it('resets a file to the starter after confirmation', async () => {
    page.once('dialog', (d) => void d.dismiss());
    await page.click('[data-action="reset"]');
    expect(await savedCode()).toContain('// my work in progress');
    page.once('dialog', (d) => void d.accept());
    await page.click('[data-action="reset"]');
    expect(await savedCode()).toContain('TODO: replace this with the walk');
  });

  it('exports progress and imports it back, asking before it replaces saved work', async () => {
    await setCode(`// exported version\n${reference}`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('[data-action="export"]'),
    ]);
    const file = join(profile, 'progress.json');
    await download.saveAs(file);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.format).toBe('spf-course-progress');
    await setCode('// something else entirely\n');
    // Declining the confirmation changes nothing.
    const asked: string[] = [];
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await page.setInputFiles('[data-action="import"]', file);
    await page.waitForFunction(() =>
      document.querySelector('[data-status-line]')?.textContent?.startsWith('Import cancelled'),
    );
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('replaces the code saved in this browser');
    expect(asked[0]).toMatch(/lab1 \(version \d+\): walk\.ts/);
    expect(await savedCode()).toBe('// something else entirely\n');
    expect(await page.locator('.cm-content').textContent()).toContain('// something else entirely');
    // Accepting it imports.
    page.once('dialog', (d) => void d.accept());
    await page.setInputFiles('[data-action="import"]', file);
    await page.waitForFunction(() =>
      document.querySelector('[data-status-line]')?.textContent?.startsWith('Imported'),
    );
    expect(await savedCode()).toBe(`// exported version\n${reference}`);
    expect(await page.locator('.cm-content').textContent()).toContain('// exported version');
  });

  it('migrates saved code from an older lab version and says the tests were refreshed', async () => {
    await page.goto(`${base}/labs/lab2/`);
    await page.evaluate(() => {
      const old = {
        lab: 'lab2',
        version: 0,
        files: { 'seqcount.ts': '// written against version 0\n' },
        hintsShown: 1,
        lastReport: null,
        bestScore: 35,
        maxScore: 100,
        migratedFrom: null,
      };
      localStorage.setItem('spf-course:lab:lab2:v0', JSON.stringify(old));
    });
    await page.reload();
    await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
    expect(await page.isVisible('[data-notice]')).toBe(true);
    expect(await page.textContent('[data-notice]')).toContain(
      'your code was kept and the tests were refreshed',
    );
    expect(await page.locator('.cm-content').textContent()).toContain('// written against version 0');
    expect(await page.locator('[data-hints] li').count()).toBe(1);
  });

  it('Lab 2: a buggy rwsem shows the failing schedule as a per-CPU timeline with Replay', async () => {
    const lab2 = readFileSync(join(REPO, 'packages/labs/lab-files/lab2/reference/rwsem.ts'), 'utf8');
    const buggy = lab2.replace(
      'if (sem.count.value === 0 && grantHead(sem) > 0) yield* wake(sem.waitQueue, Number.POSITIVE_INFINITY);',
      'if (sem.count.value === 0) grantHead(sem);',
    );
    expect(buggy).not.toBe(lab2);
    await page.goto(`${base}/labs/lab2/`);
    await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
    await page.click('[data-file="rwsem.ts"]');
    await setCode(buggy);
    await page.click('[data-file="seqcount.ts"]');
    await setCode(readFileSync(join(REPO, 'packages/labs/lab-files/lab2/reference/seqcount.ts'), 'utf8'));
    await runTests();
    const li = page.locator('li[data-test="rwsem-up-read-wakes-writer"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.textContent()).toContain('deadlock');
    expect(await li.locator('.wb-schedule code').textContent()).toMatch(/^s1:/);
    const rows = await li.locator('svg g.row').count();
    expect(rows).toBeGreaterThan(3);
    expect(await li.locator('svg').textContent()).toContain('CPU 1');
    await li.locator('[data-action="replay"]').click();
    await page.waitForSelector('li[data-test="rwsem-up-read-wakes-writer"] svg g.row.now');
    await li.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'lab2-timeline.png') });
  });

  it('shows the lab status on the lab index', async () => {
    await page.goto(`${base}/labs/`);
    await page.waitForFunction(
      () => document.querySelector('[data-lab="lab1"] [data-lab-status]')?.textContent !== 'not started',
    );
    expect(await page.textContent('[data-lab="lab1"] [data-lab-status]')).toContain('complete ✓ (100/100)');
  });

  it('has offline search and the API reference', async () => {
    await page.goto(`${base}/`);
    expect(await page.textContent('h1')).toContain('The page fault, taken apart');
    await page.waitForFunction(() => customElements.get('site-search') !== undefined);
    await page.click('site-search button[data-open-modal]');
    await page.fill('site-search input', 'seqcount');
    await page.waitForSelector('site-search .pagefind-ui__result-link', { timeout: 10_000 });
    const hits = await page.locator('site-search .pagefind-ui__result-link').allTextContents();
    expect(hits.join(' | ')).toMatch(/Lab 2|locks/);
    await page.keyboard.press('Escape');
    const api = await page.goto(`${base}/api/labs/index.html`);
    expect(api?.status()).toBe(200);
    expect(await page.textContent('body')).toContain('gradeWithWatchdog');
    expect(await page.locator('a[href="/"]', { hasText: 'spf course' }).count()).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`the editor's text meets WCAG AA contrast (4.5:1) in the ${scheme} theme`, async () => {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${base}/labs/lab1/`);
      // Starlight's theme picker on "auto" follows the OS (emulated here).
      await page.evaluate(() => localStorage.removeItem('starlight-theme'));
      await page.reload();
      await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
      await setCode(reference);
      await page.click('h1'); // blur the editor: no selection painted over the text
      expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(scheme);
      const { samples, editorLuminance } = await page.evaluate(() => {
        const parse = (c: string): number[] => {
          const m = c.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0];
          return [m[0], m[1], m[2], m[3] ?? 1];
        };
        const lum = ([r, g, b]: number[]) => {
          const f = (v: number) => {
            const s = v / 255;
            return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
          };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const over = (top: number[], under: number[]) =>
          [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
        /** What is painted behind an element: its ancestors' backgrounds composited over the canvas. */
        const backdrop = (el: Element) => {
          const chain: Element[] = [];
          for (let e: Element | null = el; e; e = e.parentElement) chain.unshift(e);
          let bg = [255, 255, 255, 1];
          for (const e of chain) bg = over(parse(getComputedStyle(e).backgroundColor), bg);
          return bg;
        };
        const editor = document.querySelector('.cm-editor') as HTMLElement;
        const out: Array<{ text: string; cls: string; color: string; background: string; ratio: number }> =
          [];
        const walker = document.createTreeWalker(editor, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const text = n.textContent?.trim() ?? '';
          const el = n.parentElement;
          if (!text || !el || el.getClientRects().length === 0) continue;
          const bg = backdrop(el);
          const fg = over(parse(getComputedStyle(el).color), bg);
          const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
          out.push({
            text: text.slice(0, 30),
            cls: el.className,
            color: getComputedStyle(el).color,
            background: `rgb(${bg.slice(0, 3).map(Math.round).join(', ')})`,
            ratio: (a + 0.05) / (b + 0.05),
          });
        }
        return {
          samples: out,
          editorLuminance: lum(backdrop(editor.querySelector('.cm-content') as Element)),
        };
      });
      const low = (samples as ContrastSample[]).filter((x) => x.ratio < 4.5);
      const min = Math.min(...samples.map((x) => x.ratio));
      console.log(
        `${scheme}: ${samples.length} text runs in the editor, lowest contrast ${min.toFixed(2)}:1`,
      );
      expect(samples.length).toBeGreaterThan(100);
      expect(
        low.map((x) => `${x.ratio.toFixed(2)}:1 "${x.text}" .${x.cls} ${x.color} on ${x.background}`),
      ).toEqual([]);
      // The editor follows the theme: a dark background in the dark theme, a light one in the light theme.
      if (scheme === 'dark') expect(editorLuminance).toBeLessThan(0.1);
      else expect(editorLuminance).toBeGreaterThan(0.8);
      await page.locator('[data-editor]').evaluate((e) => e.scrollIntoView({ block: 'center' }));
      await page.screenshot({ path: join(SHOTS, `lab1-editor-${scheme}.png`) });
    });
  }

  it('every "API reference" link in the sidebar opens that package\'s reference', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${base}/labs/`);
    const links = await page
      .locator('nav.sidebar a[href^="/api/"]')
      .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href') ?? ''));
    expect(links).toHaveLength(7);
    for (const href of links) {
      const res = await page.goto(`${base}${href}`);
      expect(res?.status(), href).toBe(200);
      const name = href.split('/')[2];
      expect(await page.textContent('h1, h2'), href).toContain(`@spf/${name}`);
      // typedoc's own links on that page work from this URL (relative to /api/<pkg>/)
      const first = page.locator('.col-content a[href$=".html"]').first();
      if ((await first.count()) > 0) {
        const target = new URL((await first.getAttribute('href')) ?? '', page.url()).href;
        expect((await page.request.get(target)).status(), target).toBe(200);
      }
    }
  });

  it('search finds the API reference', async () => {
    await page.goto(`${base}/`);
    await page.waitForFunction(() => customElements.get('site-search') !== undefined);
    await page.click('site-search button[data-open-modal]');
    await page.fill('site-search input', 'ScheduleDivergenceError');
    await page.waitForSelector('site-search .pagefind-ui__result-link', { timeout: 10_000 });
    const hrefs = await page
      .locator('site-search .pagefind-ui__result-link')
      .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href') ?? ''));
    expect(hrefs.some((h) => h.startsWith('/api/machine/'))).toBe(true);
    await page.keyboard.press('Escape');
  });

  it('the editor shows type errors as you type, completes the lab API and shows types on hover', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await openLab1();
    // The reference type-checks.
    await setCode(reference);
    await page.waitForFunction(
      () => document.querySelector('[data-type-status]')?.textContent === 'walk.ts: no type errors',
    );
    // A short file (all of it on screen: the editor only draws the lines in view) with a typo in an API call.
    const head =
      "import type { WalkMemory } from '@spf/pagetable';\n\nexport function probe(mem: WalkMemory) {\n";
    await setCode(`${head}  return mem.readEntri(0n);\n}\n`);
    const mark = page.locator('.cm-lintRange-error').first();
    await mark.waitFor({ timeout: 20_000 });
    expect(await mark.textContent()).toBe('readEntri');
    expect(await page.textContent('[data-type-status]')).toBe('walk.ts: 1 type error');
    await mark.hover();
    await page.waitForSelector('.cm-tooltip-lint');
    expect(await page.textContent('.cm-tooltip-lint')).toContain(
      "Property 'readEntri' does not exist on type 'WalkMemory'",
    );
    // Completion after `mem.` offers WalkMemory's methods.
    await setCode(`${head}  return mem.`);
    await page.keyboard.type('re');
    await page.waitForSelector('.cm-tooltip-autocomplete', { timeout: 20_000 });
    expect(await page.textContent('.cm-tooltip-autocomplete')).toContain('readEntry');
    await page.keyboard.press('Escape');
    // Hovering the parameter shows its type.
    await setCode(`${head}  return mem.readEntry(0n);\n}\n`);
    await page.waitForFunction(
      () => document.querySelector('[data-type-status]')?.textContent === 'walk.ts: no type errors',
    );
    const param = page
      .locator('.cm-line', { hasText: 'export function probe' })
      .locator('span', { hasText: /^mem$/ });
    await param.first().hover();
    await page.waitForSelector('.cm-tooltip-hover .cm-type-info', { timeout: 20_000 });
    expect(await page.textContent('.cm-type-info')).toContain('mem: WalkMemory');
    await page.locator('[data-editor]').evaluate((e) => e.scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: join(SHOTS, 'lab1-editor-types.png') });
  });
});
