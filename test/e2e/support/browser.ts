// Debian's Chromium driven by playwright-core (never `playwright`, which downloads browsers), and the few
// steps every scenario shares. Elements are found by role and accessible name, as assistive technology
// finds them — never by CSS classes.
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Locator,
  type Page,
  type Request,
} from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export const DEMO_PASSWORD = 'demo-password';

/**
 * A new browser context on the app. Page errors (an exception in app.js, a CSP refusal, a missing stylesheet
 * or script) fail the scenario: `problems()` lists them and `afterEach` hooks assert it is empty. A scenario
 * that provokes an error on purpose names it in `expectedErrors`.
 */
export async function newContext(browser: Browser, baseURL: string, options: BrowserContextOptions & { expectedErrors?: RegExp } = {}) {
  const { expectedErrors, ...contextOptions } = options;
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, ...contextOptions });
  context.setDefaultTimeout(15_000);
  const problems: string[] = [];
  context.on('weberror', (error) => problems.push(`page error: ${error.error().message}`));
  context.on('console', (message) => {
    // A 4xx page or htmx answer (404, 409, 422) is logged as "Failed to load resource"; scenarios check those statuses themselves.
    const text = message.text();
    if (message.type() === 'error' && !text.startsWith('Failed to load resource') && !expectedErrors?.test(text))
      problems.push(`console error: ${text}`);
  });
  context.on('response', (response) => {
    const type = response.request().resourceType();
    if (response.status() >= 400 && ['stylesheet', 'script', 'image', 'font'].includes(type))
      problems.push(`${type} ${response.url()} answered ${response.status()}`);
  });
  context.on('requestfailed', (request) => {
    if (['stylesheet', 'script', 'image', 'font'].includes(request.resourceType()))
      problems.push(`${request.resourceType()} ${request.url()} failed: ${request.failure()?.errorText}`);
  });
  trackHtmx(context);
  return { context, problems: () => problems };
}

/** htmx requests of a context in flight, and when the last one started or ended. */
const htmxActivity = new WeakMap<BrowserContext, { inFlight: number; last: number }>();

function trackHtmx(context: BrowserContext): void {
  const activity = { inFlight: 0, last: Date.now() };
  htmxActivity.set(context, activity);
  const isHtmx = (request: Request) => request.headers()['hx-request'] === 'true';
  context.on('request', (request) => {
    if (!isHtmx(request)) return;
    activity.inFlight++;
    activity.last = Date.now();
  });
  const done = (request: Request) => {
    if (!isHtmx(request)) return;
    activity.inFlight--;
    activity.last = Date.now();
  };
  context.on('requestfinished', done);
  context.on('requestfailed', done);
}

/**
 * Waits until no htmx request is in flight and none has started or ended for `quietMs` — longer than the
 * search boxes' 300 ms typing delay, so a search-as-you-type request that is still due has shown up by then.
 * (A person types, pauses, clicks; a test is faster than the debounce and must not act on results about to
 * be replaced.) The swap itself follows the response within a frame; callers then wait for what they expect.
 */
export async function htmxSettled(page: Page, quietMs = 450): Promise<void> {
  const activity = htmxActivity.get(page.context());
  if (!activity) throw new Error('htmxSettled needs a context made by newContext');
  const deadline = Date.now() + 15_000;
  while (activity.inFlight > 0 || Date.now() - activity.last < quietMs) {
    if (Date.now() > deadline) throw new Error('htmx requests did not settle within 15 s');
    await page.waitForTimeout(50);
  }
  await page.waitForTimeout(50);
}

/** In the open picker: type an ICCID prefix, click Search, wait for the results of exactly that search. */
export async function searchPicker(page: Page, dialog: Locator, prefix: string, count: string): Promise<void> {
  await dialog.getByRole('searchbox', { name: 'Search' }).fill(prefix);
  await dialog.getByRole('button', { name: 'Search', exact: true }).click();
  await htmxSettled(page);
  await dialog.getByText(`${count} “${prefix}”`).waitFor();
}

/** Signs in through the sign-in page (by label and button name), landing on `path`. */
export async function signIn(page: Page, email: string, path = '/endpoints'): Promise<void> {
  await page.goto(path);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === path);
}

/** Opens an endpoint from the list: search by its name, then follow its link. */
export async function openEndpoint(page: Page, name: string): Promise<void> {
  await page.goto(`/endpoints?q=${encodeURIComponent(name)}`);
  await page.getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

/**
 * The endpoint page's description lists as a map, term → definition ("Status" → "Hold", "ICCID" → …),
 * read through the term and definition roles.
 */
export async function details(page: Page): Promise<Record<string, string>> {
  const terms = await page.getByRole('term').allInnerTexts();
  const definitions = await page.getByRole('definition').allInnerTexts();
  if (definitions.length !== terms.length) throw new Error(`${terms.length} terms but ${definitions.length} definitions`);
  return Object.fromEntries(terms.map((term, i) => [term.trim(), definitions[i].trim()]));
}

/** Waits until the endpoint page says this status (fails with what it said instead). */
export async function waitForStatus(page: Page, status: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let seen = '';
  while (Date.now() < deadline) {
    seen = (await details(page).catch(() => ({}) as Record<string, string>)).Status ?? '';
    if (seen === status) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`expected the endpoint's status to be ${status}; the page says "${seen}"`);
}

/** The role="status" live region with the success message. */
export function messages(page: Page): Locator {
  return page.getByRole('status');
}

/** Is this element the focused one? */
export function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((element) => element === document.activeElement);
}

/** A short description of the focused element, for failure messages. */
export function describeFocus(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (!element || element === document.body) return 'body';
    const name = element.getAttribute('aria-label') || (element as HTMLInputElement).labels?.[0]?.textContent || element.textContent || '';
    return `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} "${name.trim().slice(0, 60)}"`;
  });
}

/**
 * Is there a visible focus indicator on the focused element? A non-zero, non-transparent outline or a
 * box-shadow that differs from the element's unfocused look (the app draws :focus-visible as a 3px outline
 * plus a yellow box-shadow).
 */
export function focusIndicator(page: Page): Promise<{ visible: boolean; detail: string }> {
  return page.evaluate(() => {
    const element = document.activeElement as HTMLElement | null;
    if (!element || element === document.body) return { visible: false, detail: 'nothing is focused' };
    const style = getComputedStyle(element);
    const outline =
      style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 && !/rgba\(.*,\s*0\)$|transparent/.test(style.outlineColor);
    const shadow = style.boxShadow !== 'none' && style.boxShadow.includes('rgb(255, 221, 0)');
    const box = element.getBoundingClientRect();
    const onScreen = box.width > 0 && box.height > 0;
    return {
      visible: onScreen && (outline || shadow),
      detail: `outline: ${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}; box-shadow: ${style.boxShadow}; box ${Math.round(box.width)}x${Math.round(box.height)}`,
    };
  });
}
