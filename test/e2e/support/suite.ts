// What each browser test file shares: one Chromium per file, a fresh context per scenario, and a check after
// every scenario that no page threw or logged an error (a CSP refusal, an exception in app.js).
import { afterAll, afterEach, beforeAll, expect, inject } from 'vitest';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { launchBrowser, newContext, signIn } from './browser.js';

export const baseURL = inject('baseURL');

export function useBrowser() {
  let browser: Browser;
  const open: { context: BrowserContext; problems: () => string[] }[] = [];

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    const problems = open.flatMap((entry) => entry.problems());
    await Promise.all(open.map((entry) => entry.context.close()));
    open.length = 0;
    expect(problems, 'errors in the browser').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
  });

  return {
    browser: () => browser,
    /** A new context (closed after the scenario), optionally signed in. */
    async page(options: BrowserContextOptions & { as?: string; path?: string; expectedErrors?: RegExp } = {}): Promise<Page> {
      const { as, path, ...contextOptions } = options;
      const entry = await newContext(browser, baseURL, contextOptions);
      open.push(entry);
      const page = await entry.context.newPage();
      if (as) await signIn(page, as, path);
      return page;
    },
  };
}
