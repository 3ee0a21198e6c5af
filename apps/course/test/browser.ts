import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';
import { ensureBuilt } from './site.js';

/** Debian's Chromium, which the browser tests drive (never a downloaded one). */
export const CHROMIUM = '/usr/bin/chromium';

/** Whether the browser tests can run here. */
export const hasChromium = existsSync(CHROMIUM);

/**
 * The guard every browser suite starts with: in CI a missing Chromium is a failure (the browser tests are
 * part of the proof), elsewhere the suite is skipped with a warning saying how to install it. Returns
 * whether to skip.
 */
export function skipWithoutChromium(suite: string): boolean {
  if (hasChromium) return false;
  if (process.env.CI) {
    throw new Error(`${CHROMIUM} is missing in CI; .ci/run installs Debian's chromium before the tests`);
  }
  console.warn(
    `\n*** SKIPPING ${suite}: ${CHROMIUM} is missing. Install it with \`apt-get install -y chromium\` (CI does). ***\n`,
  );
  return true;
}

/**
 * Launches headless Chromium with a fresh profile and the flags this network needs (without the
 * background-networking ones it keeps trying hosts that are refused). Returns the context and the profile
 * directory, which the caller removes.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'spf-chromium-'));
  // A fresh profile per run (launchPersistentContext is how playwright takes --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
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
  return { context, profile };
}

/** The built course served on a free port, with one Chromium page on it. */
export interface Site {
  /** `http://localhost:<port>`. */
  readonly base: string;
  readonly context: BrowserContext;
  readonly page: Page;
  /** The browser's fresh profile directory, a scratch place for downloads (removed by `close()`). */
  readonly profile: string;
  /** Every uncaught error a page raised, in order (a suite asserts it stays empty). */
  readonly pageErrors: string[];
  /** Closes the browser and the server and removes the profile. */
  close(): Promise<void>;
}

/** Builds the site if needed, serves it and opens Chromium on it: the set-up of every browser suite. */
export async function openSite(): Promise<Site> {
  ensureBuilt();
  const server: Server = await serve({ port: 0 });
  const base = `http://localhost:${(server.address() as AddressInfo).port}`;
  const { context, profile } = await launchChromium();
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return {
    base,
    context,
    page,
    profile,
    pageErrors,
    async close() {
      await context.close();
      await new Promise((r) => server.close(r));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a lab's page and waits until its workbench is ready and its type checker has answered. */
export async function openLab(site: Site, id: string): Promise<void> {
  await site.page.goto(`${site.base}/labs/${id}/`);
  await site.page.waitForSelector('[data-workbench][data-ready="true"]', { timeout: 20_000 });
  // The type checker's worker has started and answered: it no longer competes with timed grading runs.
  await site.page.waitForSelector('[data-workbench][data-types="checked"]', { timeout: 30_000 });
}

/** Replaces the open editor's text the way a student pasting code would. */
export async function pasteCode(page: Page, code: string): Promise<void> {
  await page.click('.cm-content');
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(code);
}

/** Puts `sources` into the workbench's editor, file by file (clicking each file's tab first). */
export async function setSources(page: Page, sources: Readonly<Record<string, string>>): Promise<void> {
  for (const [name, text] of Object.entries(sources)) {
    await page.click(`[data-file="${name}"]`);
    await pasteCode(page, text);
  }
}

/**
 * Runs the workbench's tests (its button, or Ctrl+Enter in the editor) and waits for the score line;
 * returns it (`Score: X/Y`).
 */
export async function runWorkbench(
  page: Page,
  { via = 'button', timeout = 60_000 }: { via?: 'button' | 'keyboard'; timeout?: number } = {},
): Promise<string> {
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
    { timeout },
  );
  return (await page.textContent('[data-score]')) ?? '';
}
