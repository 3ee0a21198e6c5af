import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { formatExercise, gradeSources, lab2, practiceExercise, type ScheduleDebug } from '@spf/labs';
import { variantSources } from '@spf/labs/reference';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLab, openSite, pasteCode, runWorkbench, type Site, skipWithoutChromium } from './browser.js';
import { DESIGN_PACKAGES, isBuilt } from '../src/project-status.js';

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

describe.skipIf(skipWithoutChromium("the course's end-to-end tests"))('course site in Chromium', () => {
  let site: Site;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];
  let profile: string;

  beforeAll(async () => {
    site = await openSite();
    ({ base, context, page, pageErrors, profile } = site);
  }, 600_000);

  afterAll(() => site?.close());

  const openLab1 = () => openLab(site, 'lab1');
  const setCode = (code: string) => pasteCode(page, code);
  const runTests = (via: 'button' | 'keyboard' = 'button') => runWorkbench(page, { via, timeout: 20_000 });

  const savedCode = () =>
    page.evaluate(() => {
      const k = Object.keys(localStorage).find((x) => x.startsWith('spf-course:lab:lab1:'));
      return k
        ? (JSON.parse(localStorage.getItem(k) ?? '{}').files?.['walk.ts'] as string | undefined)
        : undefined;
    });

  /**
   * WCAG contrast of every visible text under `root` against what is painted behind it, and the luminance
   * of what is painted behind `under` (an element inside it).
   */
  function measureContrast(
    root: string,
    under: string,
  ): Promise<{ samples: ContrastSample[]; backdrop: number }> {
    return page.evaluate(
      ([rootSel, underSel]) => {
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
        const box = document.querySelector(rootSel) as HTMLElement;
        const out: Array<{ text: string; cls: string; color: string; background: string; ratio: number }> =
          [];
        const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
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
        return { samples: out, backdrop: lum(backdrop(box.querySelector(underSel) as Element)) };
      },
      [root, under] as const,
    );
  }

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

  it('gives full marks to a correct solution, prints how long it took and unlocks the reference (run with Ctrl-Enter)', async () => {
    await setCode(reference);
    const score = await runTests('keyboard');
    expect(await savedCode()).toBe(reference); // Ctrl-Enter ran the tests and inserted no newline
    expect(score).toBe('Score: 100/100');
    // The course promises 2 s; the figure is printed, not asserted (this VM's speed drifts with its load).
    const ms = Number(await page.getAttribute('[data-workbench]', 'data-last-run-ms'));
    console.log(`lab1: full grading in the page took ${ms} ms`);
    expect(ms).toBeGreaterThan(0);
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

  it('Lab 2: the schedule debugger steps through a 4-CPU failure, and its link reopens it', async () => {
    // The known-buggy rwsem whose readers update the count with a load and a later store: a 4-CPU test
    // (three readers and a writer) loses an update and the writer sleeps forever.
    const sources = variantSources(lab2, 'non-atomic-reader-count');
    const test = 'rwsem-atomic-reader-count';
    // What the debugger must show, step by step: the same grading in Node (the runs are deterministic).
    const node = await gradeSources(lab2, sources);
    const expected = node.results.find((r) => r.id === test)?.details.debug as ScheduleDebug;
    expect(expected.cpus).toBe(4);
    const n = expected.steps.length;
    const cellAt = (i: number) => expected.steps[i].cells[0];
    const lockAt = (i: number) => expected.lockStates[expected.steps[i].locks[0]];

    await page.goto(`${base}/labs/lab2/`);
    await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
    await page.click('[data-file="rwsem.ts"]');
    await setCode(sources['rwsem.ts']);
    await page.click('[data-file="seqcount.ts"]');
    await setCode(sources['seqcount.ts']);
    await runTests();
    const li = page.locator(`li[data-test="${test}"]`);
    expect(await li.getAttribute('data-status')).toBe('fail');
    const dbg = li.locator('[data-debugger]');
    const shown = async () => ({
      step: Number(await dbg.getAttribute('data-step')),
      count: await dbg.locator('[data-cell="sem.count"] [data-value]').textContent(),
      holders: await dbg.locator('[data-lock="sem"] [data-holders]').textContent(),
      waiters: await dbg.locator('[data-lock="sem"] [data-waiters]').textContent(),
    });
    const want = (i: number) => ({
      step: expected.steps[i].step + 1,
      count: cellAt(i),
      holders: lockAt(i).holders.join(', ') || 'nobody',
      waiters: lockAt(i).waiters.join(', ') || '—',
    });
    // It opens at the failing step: the writer is queued and asleep, the count says a reader is inside.
    expect(await shown()).toEqual(want(n - 1));
    expect(await shown()).toMatchObject({ count: '1', holders: 'nobody', waiters: 'writer (write)' });
    expect(await dbg.locator('[data-cpu="3"] [data-state]').textContent()).toBe('blocked');
    expect(await dbg.locator('[data-cpu="3"] [data-code]').textContent()).toMatch(
      /^rwsem\.ts:\d+ in downWrite return block\(sem\.waitQueue/,
    );
    expect(await dbg.locator('[data-cpu="3"] [data-kernel]').textContent()).toContain(
      'from RwSemaphore.downWrite (@spf/locks)',
    );
    // Back, step by step, to where the count last changed: the page agrees with the simulator at each one.
    let i = n - 1;
    while (i > 0 && cellAt(i - 1) === cellAt(n - 1)) {
      await dbg.locator('[data-dbg="back"]').click();
      i--;
      expect(await shown()).toEqual(want(i));
    }
    await dbg.locator('[data-dbg="back"]').click();
    i--;
    expect(await shown()).toEqual(want(i));
    expect((await shown()).count).not.toBe('1');
    // Before the writer queued, nobody waited.
    const queued = expected.steps.findIndex((_, k) => lockAt(k).waiters.length > 0);
    await dbg.locator('[data-dbg="slider"]').fill(String(queued - 1));
    expect(await shown()).toEqual(want(queued - 1));
    expect((await shown()).waiters).toBe('—');
    await dbg.locator('[data-dbg="forward"]').click();
    expect(await shown()).toEqual(want(queued));
    expect((await shown()).waiters).toBe('writer (write)');
    // Every CPU has its column, reachable by scrolling the timeline: nothing is cropped.
    const heads = await dbg.locator('[data-dbg-timeline] thead th').allTextContents();
    expect(heads).toEqual(['step', 'CPU 0', 'CPU 1', 'CPU 2', 'CPU 3']);
    const reach = await dbg.locator('[data-dbg-timeline]').evaluate((box) => {
      box.scrollLeft = box.scrollWidth;
      const b = box.getBoundingClientRect();
      const h = [...box.querySelectorAll('thead th')].at(-1)?.getBoundingClientRect();
      return h ? h.right <= b.right + 1 && h.left >= b.left - 1 : false;
    });
    expect(reach).toBe(true);
    await dbg.locator('[data-dbg-timeline]').evaluate((box) => {
      box.scrollLeft = 0;
    });
    await li.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'lab2-timeline.png') });
    // The link reopens the same failure at the same step, in a new tab with the saved code.
    const mid = Math.floor(n / 2);
    await dbg.locator('[data-dbg="slider"]').fill(String(mid));
    const href = await dbg.locator('[data-dbg-link]').getAttribute('href');
    expect(href).toMatch(/^\/labs\/lab2\/#debug=/);
    const tab = await context.newPage();
    await tab.goto(`${base}${href}`);
    await tab.waitForSelector(`li[data-test="${test}"] [data-debugger][data-step="${want(mid).step}"]`, {
      timeout: 30_000,
    });
    const d2 = tab.locator(`li[data-test="${test}"] [data-debugger]`);
    expect(await d2.locator('[data-cell="sem.count"] [data-value]').textContent()).toBe(cellAt(mid));
    expect(await tab.textContent('[data-status-line]')).toContain(`Reopened the failure of ${test} at step`);
    expect(await tab.textContent(`li[data-test="${test}"] .wb-message`)).toContain(
      'replaying the schedule you asked for',
    );
    await tab.close();
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`the schedule debugger's text meets WCAG AA contrast in the ${scheme} theme`, async () => {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${base}/labs/lab2/`);
      await page.evaluate(() => localStorage.removeItem('starlight-theme'));
      await page.reload();
      // The last report (with the failing test's debugger) is restored from the saved progress.
      await page.waitForSelector('[data-debugger]', { timeout: 20_000 });
      expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(scheme);
      const { samples, backdrop } = await measureContrast('[data-debugger]', '[data-dbg-timeline] td');
      const low = samples.filter((x) => x.ratio < 4.5);
      console.log(
        `${scheme}: ${samples.length} text runs in the debugger, lowest ${Math.min(...samples.map((x) => x.ratio)).toFixed(2)}:1`,
      );
      expect(samples.length).toBeGreaterThan(50);
      expect(
        low.map((x) => `${x.ratio.toFixed(2)}:1 "${x.text}" .${x.cls} ${x.color} on ${x.background}`),
      ).toEqual([]);
      // The timeline follows the theme (it was white in the dark theme).
      if (scheme === 'dark') expect(backdrop).toBeLessThan(0.1);
      else expect(backdrop).toBeGreaterThan(0.8);
      await page
        .locator('[data-debugger]')
        .first()
        .evaluate((e) => e.scrollIntoView({ block: 'start' }));
      await page.screenshot({ path: join(SHOTS, `lab2-debugger-${scheme}.png`) });
    });
  }

  it('the practice panels show the same exercise as the CLI for a seed, and the answers on request', async () => {
    for (const [lab, seed] of [
      ['lab1', 7],
      ['lab2', 3],
    ] as const) {
      const ex = practiceExercise(lab, seed);
      await page.goto(`${base}/labs/${lab}/`);
      const panel = page.locator(`[data-practice="${lab}"]`);
      await panel.locator('[data-practice-seed]').fill(String(seed));
      await panel.locator('[data-practice-action="show"]').click();
      await page.waitForSelector(`[data-practice="${lab}"][data-seed="${seed}"]`);
      expect(await panel.locator('[data-practice-question]').textContent()).toBe(
        formatExercise(ex, false).split('\n\nWork it out')[0],
      );
      expect(await panel.locator('[data-practice-answer]').isVisible()).toBe(false);
      await panel.locator('[data-practice-action="answers"]').click();
      expect(await panel.locator('[data-practice-answer]').textContent()).toBe(ex.answer.join('\n'));
      await panel.locator('[data-practice-action="new"]').click();
      expect(Number(await panel.getAttribute('data-seed'))).not.toBe(seed);
    }
    expect(pageErrors).toEqual([]);
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
      const { samples, backdrop: editorLuminance } = await measureContrast('.cm-editor', '.cm-content');
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
    // One link per package that exists, in the design's order (a new package must get its reference too).
    expect(links).toEqual(DESIGN_PACKAGES.filter((p) => isBuilt(p.name)).map((p) => `/api/${p.name}/`));
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
