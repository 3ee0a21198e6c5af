import type { Page } from 'playwright-core';
import { referenceSources, variantSources } from '@spf/labs/reference';
import { getLab } from '@spf/labs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLab, openSite, type Site, setSources, skipWithoutChromium } from './browser.js';

// Lab 7 in Chromium: the reference gets full marks (the time is printed; the course promises 20 s on this
// machine), the workbench shows its progress while the 32-CPU performance test runs, a correct counter on
// one shared line fails the performance test with its simulated figure, and a fold without the lock fails
// the explored test with its schedule and timeline. (test/browser.ts's skipWithoutChromium says what happens without Chromium.)

describe.skipIf(skipWithoutChromium("Lab 7's end-to-end tests"))('Lab 7 in Chromium', () => {
  let site: Site;
  let page: Page;
  const lab = getLab('lab7');

  beforeAll(async () => {
    site = await openSite();
    page = site.page;
  }, 600_000);

  afterAll(() => site?.close());

  /** Presses Run tests; returns the score and what the progress indicator showed while the tests ran. */
  async function runTests(): Promise<{ score: string; progress: string[] }> {
    const progress: string[] = [];
    // Record every change of the status line and the progress bar as the page makes it (a whole grading can
    // take under a second, so sampling on a timer could miss the states this test looks for).
    await page.evaluate(() => {
      const w = window as unknown as { spfProgress?: string[]; spfProgressObserver?: MutationObserver };
      w.spfProgressObserver?.disconnect();
      const log: string[] = [];
      w.spfProgress = log;
      const bar = document.querySelector<HTMLProgressElement>('[data-progress]');
      const status = document.querySelector('[data-status-line]');
      if (bar === null || status === null) return;
      const observer = new MutationObserver(() => {
        if (!bar.hidden) log.push(`${bar.value}/${bar.max} ${status.textContent ?? ''}`);
      });
      observer.observe(status, { childList: true, characterData: true, subtree: true });
      observer.observe(bar, { attributes: true });
      w.spfProgressObserver = observer;
    });
    await page.click('[data-action="run"]');
    // Wait for the run to end, sampling the status line and the progress bar too.
    for (;;) {
      const s = await page.evaluate(() => {
        const b = document.querySelector<HTMLButtonElement>('[data-action="run"]');
        const bar = document.querySelector<HTMLProgressElement>('[data-progress]');
        return {
          done: Boolean(
            b &&
              !b.disabled &&
              (document.querySelector('[data-score]')?.textContent ?? '').startsWith('Score'),
          ),
          status: document.querySelector('[data-status-line]')?.textContent ?? '',
          bar: bar && !bar.hidden ? `${bar.value}/${bar.max}` : null,
        };
      });
      if (s.done) break;
      if (s.bar !== null) progress.push(`${s.bar} ${s.status}`);
      await page.waitForTimeout(200);
    }
    const observed = await page.evaluate(
      () => (window as unknown as { spfProgress?: string[] }).spfProgress ?? [],
    );
    return { score: (await page.textContent('[data-score]')) ?? '', progress: [...observed, ...progress] };
  }

  it('the reference gets full marks, with progress shown while the tests run', async () => {
    await openLab(site, 'lab7');
    expect((await runTests()).score).toBe('Score: 0/100'); // the starter
    await setSources(page, referenceSources(lab));
    const { score, progress } = await runTests();
    expect(score).toBe('Score: 100/100');
    const ms = Number(await page.getAttribute('[data-workbench]', 'data-last-run-ms'));
    console.log(`lab7: full grading in the page took ${ms} ms; progress seen: ${progress.length} samples`);
    // The bar and the status line name the test running and how many are done, including the long one.
    expect(
      progress.some((p) => /Running the tests: \d of 7 done, now Faults per second at 32 CPUs/.test(p)),
    ).toBe(true);
    expect(progress.some((p) => p.startsWith('6/7') || p.startsWith('5/7'))).toBe(true);
    expect(await page.isHidden('[data-progress]')).toBe(true);
    expect(await page.locator('li[data-status="pass"]').count()).toBe(7);
  });

  it('a correct counter on one shared line fails the performance test with its simulated figure', async () => {
    await openLab(site, 'lab7');
    await setSources(page, variantSources(lab, 'one-shared-line'));
    expect((await runTests()).score).toBe('Score: 75/100');
    const li = page.locator('li[data-test="scales-32"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.textContent()).toMatch(
      /M faults per simulated second at 32 CPUs, below the threshold of 22\.00 M/,
    );
  });

  it('a fold without the lock fails the explored test, with its schedule and timeline', async () => {
    await openLab(site, 'lab7');
    await setSources(page, variantSources(lab, 'fold-not-atomic'));
    const { score } = await runTests();
    expect(score).not.toBe('Score: 100/100');
    const li = page.locator('li[data-test="concurrent-folds"]');
    expect(await li.getAttribute('data-status')).toBe('fail');
    expect(await li.textContent()).toMatch(/one fold was lost/);
    expect(await li.locator('.wb-schedule code').textContent()).toMatch(/^s1:/);
    const heads = await li.locator('[data-debugger] [data-dbg-timeline] thead th').allTextContents();
    expect(heads.slice(0, 4)).toEqual(['step', 'CPU 0', 'CPU 1', 'CPU 2']);
  });

  it('raised no page errors', () => {
    expect(site.pageErrors).toEqual([]);
  });
});
