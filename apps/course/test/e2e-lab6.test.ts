import { existsSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { referenceSources, variantSources } from '@spf/labs/reference';
import { getLab } from '@spf/labs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../scripts/serve.mjs';
import { CHROMIUM, launchChromium } from './browser.js';
import { ensureBuilt } from './site.js';

// Lab 6 in Chromium: the reference solution gets full marks (the grading time is printed; the course
// promises 5 s), a solution that keeps mmap_lock over the read fails the latency test with its simulated
// figure, and one without the file pin fails the munmap race with the use-after-free report, its schedule
// and timeline. (test/e2e.test.ts says what happens when /usr/bin/chromium is missing.)

const hasChromium = existsSync(CHROMIUM);

describe.skipIf(!hasChromium)('Lab 6 in Chromium', () => {
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const pageErrors: string[] = [];
  const lab = getLab('lab6');

  beforeAll(async () => {
    ensureBuilt();
    server = await serve({ port: 0 });
    base = `http://localhost:${(server.address() as AddressInfo).port}`;
    ({ context, profile } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    await new Promise((r) => server?.close(r));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function openLab(): Promise<void> {
    await page.goto(`${base}/labs/lab6/`);
    await page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
    await page.waitForSelector('[data-workbench][data-types="checked"]', { timeout: 30_000 });
  }

  /** Puts `sources` into the editor, file by file, the way a student pasting code would. */
  async function setSources(sources: Readonly<Record<string, string>>): Promise<void> {
    for (const [name, text] of Object.entries(sources)) {
      await page.click(`[data-file="${name}"]`);
      await page.click('.cm-content');
      await page.keyboard.press('Control+A');
      await page.keyboard.insertText(text);
    }
  }

  async function runTests(): Promise<string> {
    await page.click('[data-action="run"]');
    await page.waitForFunction(
      () => {
        const b = document.querySelector<HTMLButtonElement>('[data-action="run"]');
        const s = document.querySelector('[data-score]')?.textContent ?? '';
        return b && !b.disabled && s.startsWith('Score');
      },
      null,
      { timeout: 60_000 },
    );
    return (await page.textContent('[data-score]')) ?? '';
  }

  it('the starter scores 0 and the reference solution full marks (grading time printed)', async () => {
    await openLab();
    expect(await runTests()).toBe('Score: 0/100');
    await setSources(referenceSources(lab));
    expect(await runTests()).toBe('Score: 100/100');
    const ms = Number(await page.getAttribute('[data-workbench]', 'data-last-run-ms'));
    console.log(`lab6: full grading in the page took ${ms} ms`);
    expect(await page.locator('li[data-status="pass"]').count()).toBe(lab.tests.length);
  });

  it('keeping mmap_lock over the read fails the latency test with the simulated wait', async () => {
    await openLab();
    await setSources(variantSources(lab, 'keeps-lock-over-io'));
    expect(await runTests()).toBe('Score: 80/100');
    const li = page.locator('li[data-test="lock-dropped-during-io"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.textContent()).toMatch(
      /mmap waited 1008671 ns for mmap_lock during a major fault's disk read/,
    );
  });

  it('no file pin fails the munmap race with the use-after-free report, its schedule and timeline', async () => {
    await openLab();
    await setSources(variantSources(lab, 'no-file-pin'));
    expect(await runTests()).not.toBe('Score: 100/100');
    const li = page.locator('li[data-test="munmap-during-io"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.textContent()).toMatch(/use-after-free.*fput of file '\/mnt\/race'/);
    expect(await li.locator('.wb-schedule code').textContent()).toMatch(/^s1:/);
    const dbg = li.locator('[data-debugger]');
    const heads = await dbg.locator('[data-dbg-timeline] thead th').allTextContents();
    expect(heads.slice(0, 3)).toEqual(['step', 'CPU 0', 'CPU 1']);
    expect(await dbg.locator('[data-dbg-timeline] tbody tr').count()).toBeGreaterThan(0);
  });

  it('raised no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
