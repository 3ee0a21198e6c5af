import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSite, type Site, skipWithoutChromium } from './browser.js';

// The README's screenshot is rewritten only on request (SPF_UPDATE_SCREENSHOTS=1), as in e2e.test.ts.
const SHOTS = process.env.SPF_UPDATE_SCREENSHOTS
  ? fileURLToPath(new URL('../../../docs/screenshots', import.meta.url))
  : mkdtempSync(join(tmpdir(), 'spf-screenshots-'));

describe.skipIf(skipWithoutChromium("the playground's end-to-end tests"))(
  'the playground in Chromium',
  () => {
    let site: Site;
    let base: string;
    let page: Page;
    let pageErrors: string[];

    beforeAll(async () => {
      site = await openSite();
      ({ base, page, pageErrors } = site);
    });

    afterAll(() => site?.close());

    async function open(url: string): Promise<void> {
      await page.goto(url);
      await page.waitForSelector('[data-playground] .cm-content', { timeout: 30_000 });
      await page.waitForFunction(
        () => !document.querySelector<HTMLButtonElement>('[data-action="run"]')?.disabled,
      );
    }

    async function run(): Promise<void> {
      await page.evaluate(() => {
        const r = document.querySelector('[data-results]');
        if (r) r.replaceChildren();
      });
      await page.click('[data-action="run"]');
      await page.waitForFunction(
        () =>
          !document.querySelector<HTMLButtonElement>('[data-action="run"]')?.disabled &&
          (document.querySelector('[data-results] .pg-results') !== null ||
            !document.querySelector<HTMLElement>('[data-error]')?.hidden),
        null,
        { timeout: 60_000 },
      );
    }

    it('runs the fork example and shows maps, page tables, counters, the timeline and a Chrome trace', async () => {
      await open(`${base}/playground/`);
      await page.evaluate(() => localStorage.clear());
      await open(`${base}/playground/`);
      expect(await page.textContent('.cm-content')).toContain("spawn('demo'");
      await run();
      console.log(`fork example: ${await page.textContent('[data-status]')}`);
      expect(await page.isHidden('[data-error]')).toBe(true);
      const maps = await page.$$eval('[data-maps]', (es) => es.map((e) => e.textContent ?? ''));
      expect(maps.some((m) => m.startsWith('7ffff7ffd000-7ffff7fff000 rw-p 00000000 00:00 0'))).toBe(true);
      const tables = await page.$$eval('[data-pagetables]', (es) => es.map((e) => e.textContent ?? ''));
      // The child's entry before its store: present, user, not writable (copy-on-write).
      const child = await page.textContent('[data-snapshot^="child before its store"] [data-pagetables]');
      expect(child).toMatch(/PT\[1fd\] .* va 0x7ffff7ffd000 -> pa 0x[0-9a-f]+ 4K \[P US D/);
      expect(tables.some((t) => /\[P RW US A D/.test(t))).toBe(true);
      expect(await page.textContent('[data-processes]')).toContain('killed by SIGSEGV (MAPERR)');
      expect(await page.textContent('[data-output]')).toContain('parent reads 42');
      const cpus = await page.$$eval('[data-timeline] svg text', (ts) =>
        ts.map((t) => t.textContent).filter((t) => t?.startsWith('CPU ')),
      );
      expect(cpus).toEqual(['CPU 0', 'CPU 1']);
      expect(await page.$$eval('[data-timeline] svg g.row', (rows) => rows.length)).toBeGreaterThan(50);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('[data-action="trace"]'),
      ]);
      const trace = JSON.parse(readFileSync((await download.path()) as string, 'utf8')) as {
        traceEvents: { name: string; ph: string; tid: number }[];
      };
      expect(trace.traceEvents.filter((e) => e.name === 'thread_name').map((e) => e.tid)).toEqual([0, 1]);
      expect(trace.traceEvents.some((e) => e.ph === 'X' && e.name.includes('mmap_lock'))).toBe(true);
      await page.evaluate(() =>
        document.querySelector('[data-processes]')?.scrollIntoView({ block: 'start' }),
      );
      await page.screenshot({ path: join(SHOTS, 'playground-fork.png') });
      expect(pageErrors).toEqual([]);
    });

    it('a shared link restores the program and the settings in a new tab', async () => {
      await open(`${base}/playground/`);
      await page.click('.cm-content');
      await page.keyboard.press('Control+Home');
      await page.keyboard.insertText('// shared by e2e: é ✓\n');
      await page.fill('[data-field="cpus"]', '3');
      await page.selectOption('[data-field="handler"]', 'pervma');
      await page.click('[data-action="share"]');
      const link = await page.inputValue('[data-link]');
      expect(link).toMatch(/\/playground\/#pg=[A-Za-z0-9_-]+$/);
      const other = await site.context.newPage();
      try {
        await other.evaluate(() => localStorage.clear()).catch(() => {});
        await other.goto(link);
        await other.waitForSelector('[data-playground] .cm-content', { timeout: 30_000 });
        expect(await other.textContent('.cm-content')).toContain('// shared by e2e: é ✓');
        expect(await other.inputValue('[data-field="cpus"]')).toBe('3');
        expect(await other.inputValue('[data-field="handler"]')).toBe('pervma');
        expect(await other.textContent('[data-status]')).toContain('Loaded the shared program');
      } finally {
        await other.close();
      }
    });

    it('the per-VMA-lock race example fails with a report and its schedule', async () => {
      await open(`${base}/playground/`);
      await page.selectOption('[data-field="example"]', 'spf-race');
      expect(await page.inputValue('[data-field="specOptions"]')).toBe('checks.vmaStartWrite.mprotect=false');
      await run();
      console.log(`race example: ${await page.textContent('[data-status]')}`);
      expect(await page.textContent('[data-failure]')).toMatch(/invariants violated/);
      expect(await page.textContent('[data-failure] code')).toMatch(/^s1:/);
      expect(await page.textContent('[data-status]')).toMatch(/this one fails/);
    });

    it('reports a syntax error without running', async () => {
      await open(`${base}/playground/`);
      await page.selectOption('[data-field="example"]', 'fork');
      await page.click('.cm-content');
      await page.keyboard.press('Control+End');
      await page.keyboard.insertText('\nspawn("x", function* (u) {');
      await run();
      expect(await page.textContent('[data-error]')).toMatch(/program\.ts:\d+:\d+: syntax error/);
    });
  },
);
