// WCAG 2.2 1.4.10 Reflow, which axe does not test: every page and dialog at 320 CSS px wide (1280 px at 400 %
// zoom) without the page scrolling sideways. A wide data table may scroll inside a region of its own (WCAG
// allows it for data tables) — then that region is focusable, named, and scrolls with the arrow keys. In the
// picker dialog Attach SIM and Cancel stay on screen while the list scrolls. axe runs on each state at 320 px
// too. Then forced colours (Windows High Contrast): focus indicators, buttons and the dialog stay visible
// when backgrounds and shadows are gone; and one button style, whether it is a <button> or a link.
import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { focusIndicator, htmxSettled, messages, openEndpoint, signIn } from './support/browser.js';
import { describe as describeReport, scan, type ScanReport } from './support/axe.js';
import { tabTo } from './support/keyboard.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

const NARROW = { width: 320, height: 640 };
/** 1280 × 1024 at 400 %: what a person zoomed in that far has left above the fold. */
const NARROW_AND_SHORT = { width: 320, height: 256 };

interface SidewaysScroller {
  what: string;
  role: string | null;
  name: string;
  focusable: boolean;
}

/** How far the page scrolls sideways, and every element that scrolls sideways inside it. */
function measure(page: Page): Promise<{ overflow: number; scrollers: SidewaysScroller[] }> {
  return page.evaluate(() => {
    const root = document.documentElement;
    const scrollers: SidewaysScroller[] = [];
    for (const element of document.querySelectorAll<HTMLElement>('body, body *')) {
      if (!['auto', 'scroll'].includes(getComputedStyle(element).overflowX) || element.scrollWidth <= element.clientWidth + 1) continue;
      if (!element.getClientRects().length) continue;
      const labelledBy = (element.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter(Boolean);
      const name = (element.getAttribute('aria-label') ?? labelledBy.map((id) => document.getElementById(id)?.textContent ?? '').join(' '))
        .replace(/\s+/g, ' ')
        .trim();
      scrollers.push({
        what: `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} (${element.scrollWidth} px in ${element.clientWidth})`,
        role: element.getAttribute('role'),
        name,
        focusable: element.tabIndex >= 0,
      });
    }
    return { overflow: root.scrollWidth - root.clientWidth, scrollers };
  });
}

/** Is the element wholly inside the viewport, and the topmost element at its centre (not covered)? */
async function onScreen(page: Page, locator: Locator): Promise<string | null> {
  const box = await locator.boundingBox();
  const viewport = page.viewportSize()!;
  if (!box) return 'not rendered';
  if (box.x < 0 || box.y < 0 || box.x + box.width > viewport.width + 0.5 || box.y + box.height > viewport.height + 0.5) {
    return `at ${Math.round(box.x)},${Math.round(box.y)} ${Math.round(box.width)}×${Math.round(box.height)}, outside the ${viewport.width}×${viewport.height} viewport`;
  }
  const covered = await locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return top && (top === element || element.contains(top))
      ? null
      : `covered by ${top?.tagName.toLowerCase()}${top?.id ? `#${top.id}` : ''}`;
  });
  return covered;
}

describe('reflow at 320 CSS px (WCAG 1.4.10), with axe at that width', () => {
  const browser = useBrowser();
  const accepted: Record<string, number> = {};

  afterAll(() => {
    const summary = Object.entries(accepted).map(([rule, count]) => `${rule} ×${count}`);
    console.log(
      `axe at 320 px: accepted incomplete results (reviewed, see support/axe.ts): ${summary.length ? summary.join(', ') : 'none'}`,
    );
  });

  /** Each test gathers the problems of its states and fails once, listing all of them. */
  function states() {
    const problems: string[] = [];
    const reports: ScanReport[] = [];
    return {
      /**
       * The page as it is now: no sideways page scroll; whatever scrolls sideways is a focusable region named
       * by its table's caption (and at least `regions` of them do, where a wide table is expected).
       */
      async check(page: Page, state: string, options: { regions?: number; axe?: boolean } = {}) {
        const { overflow, scrollers } = await measure(page);
        if (overflow > 0) problems.push(`${state}: the page scrolls sideways by ${overflow} px`);
        for (const scroller of scrollers) {
          if (scroller.role !== 'region' || !scroller.name || !scroller.focusable) {
            problems.push(
              `${state}: ${scroller.what} scrolls sideways but is not a focusable, named region (role ${scroller.role}, name "${scroller.name}", focusable ${scroller.focusable})`,
            );
          } else if ((await page.getByRole('region', { name: scroller.name, exact: true }).count()) < 1) {
            problems.push(`${state}: no region named "${scroller.name}" in the accessibility tree`);
          }
        }
        if (scrollers.length < (options.regions ?? 0))
          problems.push(`${state}: expected ${options.regions} table region(s) scrolling sideways, found ${scrollers.length}`);
        if (options.axe !== false) reports.push(await scan(page, `${state} (320 px)`));
      },
      problem(text: string) {
        problems.push(text);
      },
      done() {
        for (const report of reports)
          for (const [rule, count] of Object.entries(report.accepted)) accepted[rule] = (accepted[rule] ?? 0) + count;
        const axe = reports.filter((report) => report.violations.length || report.unreviewed.length).map(describeReport);
        expect([...problems, ...axe].join('\n'), `${reports.length} states scanned by axe`).toBe('');
      },
    };
  }

  it('sign-in (with an error, and after signing out), endpoints list, new endpoint, endpoint page in each state, History, not found', async () => {
    const page = await browser.page({ viewport: NARROW });
    const s = states();
    await page.goto('/sign-in');
    await s.check(page, 'sign-in');
    await page.getByLabel('Email').fill(ADMIN);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await s.check(page, 'sign-in: error summary');

    await signIn(page, ADMIN);
    await s.check(page, 'endpoints list', { regions: 1 });
    await page.goto('/endpoints?q=no-such-endpoint');
    await s.check(page, 'endpoints list: nothing matches');

    await page.goto('/endpoints/new');
    await s.check(page, 'create endpoint');
    await page.getByRole('textbox', { name: 'IMEI (optional)' }).fill('12345');
    await page.getByRole('textbox', { name: 'SIM to link now (optional): ICCID' }).fill('8944');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await s.check(page, 'create endpoint: error summary');

    const { hold, preActive, active, suspended } = SCENARIO.states;
    for (const [name, status] of [
      [hold, 'Hold'],
      [preActive, 'Pre-Active'],
      [active, 'Active'],
      [suspended, 'Suspended'],
    ]) {
      await openEndpoint(page, name);
      await s.check(page, `endpoint page: ${status}`);
    }
    await page.goto('/events');
    await s.check(page, 'History', { regions: 1 });
    await page.goto('/endpoints/999999999');
    await s.check(page, 'not found');

    // Sign out: the sign-in page says so, in the status region.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await messages(page).getByText('You have signed out').waitFor();
    await s.check(page, 'sign-in: signed out');
    s.done();
  });

  it('a table region is reached with Tab, shows focus, and scrolls with the arrow keys', async () => {
    const page = await browser.page({ as: ADMIN, viewport: NARROW });
    const region = page.getByRole('region', { name: 'Endpoints' });
    await tabTo(page, region, { max: 60 });
    expect(await focusIndicator(page)).toMatchObject({ visible: true });
    expect(await region.evaluate((element) => element.scrollLeft)).toBe(0);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => region.evaluate((element) => element.scrollLeft)).toBeGreaterThan(0);
  });

  it('the picker page without JavaScript, and the confirmation pages', async () => {
    const s = states();
    // Without JavaScript (axe needs it: it scans the same full page below).
    const noJs = await browser.page({ as: ADMIN, viewport: NARROW, javaScriptEnabled: false });
    await noJs.goto(`/endpoints?q=${encodeURIComponent(SCENARIO.axeHold.endpoint)}`);
    await noJs.getByRole('link', { name: SCENARIO.axeHold.endpoint, exact: true }).click();
    await noJs.getByRole('link', { name: 'Link SIM' }).click();
    await noJs.getByRole('heading', { level: 1, name: 'Select SIM to attach' }).waitFor();
    await s.check(noJs, 'picker page, JavaScript off', { regions: 1, axe: false });
    await noJs.getByRole('button', { name: 'Attach SIM' }).click();
    await noJs.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await s.check(noJs, 'picker page, JavaScript off: nothing chosen', { regions: 1, axe: false });
    await noJs.getByRole('searchbox', { name: 'Search' }).fill('abc');
    await noJs.getByRole('button', { name: 'Search', exact: true }).click();
    await noJs.getByText('Only digits are searched').waitFor();
    await s.check(noJs, 'picker page, JavaScript off: letters searched', { axe: false });

    const page = await browser.page({ as: ADMIN, viewport: NARROW });
    await openEndpoint(page, SCENARIO.axeHold.endpoint);
    const pickerPath = (await page.getByRole('link', { name: 'Link SIM' }).getAttribute('href'))!;
    await page.goto(pickerPath);
    await page.getByRole('heading', { level: 1, name: 'Select SIM to attach' }).waitFor();
    expect(await page.getByRole('dialog').count()).toBe(0);
    await s.check(page, 'picker page', { regions: 1 });
    const simId = await page.getByRole('radio').first().getAttribute('value');
    await page.goto(`${pickerPath.replace(/\/new$/, '/confirm')}?sim_id=${simId}`);
    await page.getByRole('heading', { level: 1, name: 'Are you sure you want to continue?' }).waitFor();
    await s.check(page, 'confirmation page: Link SIM');

    await openEndpoint(page, SCENARIO.states.preActive);
    const endpointPath = new URL(page.url()).pathname;
    for (const [label, path] of [
      ['Activate', 'activate'],
      ['De-link', 'sim/delete'],
    ]) {
      await page.goto(`${endpointPath}/${path}`);
      await page.getByRole('heading', { level: 1, name: 'Are you sure you want to continue?' }).waitFor();
      await s.check(page, `confirmation page: ${label}`);
    }
    s.done();
  });

  for (const viewport of [NARROW, NARROW_AND_SHORT]) {
    it(`the picker dialog at ${viewport.width}×${viewport.height}: no sideways scroll, Attach SIM and Cancel on screen; the confirmation dialog's Yes and No`, async () => {
      const page = await browser.page({ as: ADMIN, viewport });
      const s = states();
      await openEndpoint(page, SCENARIO.axeHold.endpoint);
      await page.getByRole('link', { name: 'Link SIM' }).click();
      const picker = page.getByRole('dialog', { name: 'Select SIM to attach' });
      await picker.getByRole('radio').first().waitFor();
      const actionsOnScreen = async (state: string, dialog: Locator, names: string[]) => {
        for (const name of names) {
          const where = await onScreen(page, dialog.getByRole('button', { name, exact: true }));
          if (where) s.problem(`${state}: ${name} is not on screen (${where})`);
        }
      };
      await s.check(page, 'picker dialog', { regions: 1 });
      await actionsOnScreen('picker dialog, as opened', picker, ['Attach SIM', 'Cancel']);

      // Scrolled to the end of the list, and back into the middle of it: still on screen.
      await picker.evaluate((dialog) => dialog.scrollTo(0, dialog.scrollHeight));
      await actionsOnScreen('picker dialog, scrolled to the end', picker, ['Attach SIM', 'Cancel']);
      await picker.getByRole('radio').nth(12).scrollIntoViewIfNeeded();
      await actionsOnScreen('picker dialog, scrolled to the middle', picker, ['Attach SIM', 'Cancel']);

      // The table region inside the dialog is reached with Tab (after the search) and scrolls sideways.
      const region = picker.getByRole('region', { name: 'Ready to Activate SIMs, in ICCID order' });
      await tabTo(page, region);
      await page.keyboard.press('ArrowRight');
      await expect.poll(() => region.evaluate((element) => element.scrollLeft)).toBeGreaterThan(0);

      // Letters typed in the search: the message, not "0 SIMs match".
      await picker.getByRole('searchbox', { name: 'Search' }).fill('abc');
      await picker.getByRole('button', { name: 'Search', exact: true }).click();
      await htmxSettled(page);
      await picker.getByText('Only digits are searched, and “abc” has other characters in it.').waitFor();
      expect(await picker.getByText('SIMs match').count()).toBe(0);
      await s.check(page, 'picker dialog: letters searched');
      await actionsOnScreen('picker dialog: letters searched', picker, ['Attach SIM', 'Cancel']);

      // Nothing chosen: the error summary, and the buttons still there.
      await picker.getByRole('searchbox', { name: 'Search' }).fill('');
      await picker.getByRole('button', { name: 'Search', exact: true }).click();
      await htmxSettled(page);
      await picker.getByRole('radio').first().waitFor();
      await picker.getByRole('button', { name: 'Attach SIM' }).click();
      await page.getByRole('dialog').getByRole('heading', { name: 'There is a problem' }).waitFor();
      await s.check(page, 'picker dialog: nothing chosen', { regions: 1 });
      await actionsOnScreen('picker dialog: nothing chosen', page.getByRole('dialog'), ['Attach SIM', 'Cancel']);

      // Chosen: the confirmation in the dialog, Yes and No on screen; No changes nothing.
      await page.getByRole('dialog').getByRole('radio').first().check();
      await page.getByRole('dialog').getByRole('button', { name: 'Attach SIM' }).click();
      const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
      await confirmation.waitFor();
      await s.check(page, 'confirmation dialog');
      await confirmation.getByRole('button', { name: 'Yes' }).scrollIntoViewIfNeeded();
      await actionsOnScreen('confirmation dialog', confirmation, ['Yes', 'No']);
      await confirmation.getByRole('button', { name: 'No' }).click();
      await confirmation.waitFor({ state: 'hidden' });
      s.done();
    });
  }

  it('Create endpoint’s picker dialog', async () => {
    const page = await browser.page({ as: ADMIN, viewport: NARROW, path: '/endpoints/new' });
    const s = states();
    await page.getByRole('button', { name: 'Choose a SIM' }).click();
    const picker = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await picker.getByRole('radio').first().waitFor();
    await s.check(page, 'create endpoint: picker dialog', { regions: 1 });
    for (const name of ['Attach SIM', 'Cancel']) {
      const where = await onScreen(page, picker.getByRole('button', { name, exact: true }));
      if (where) s.problem(`create endpoint: picker dialog: ${name} is not on screen (${where})`);
    }
    await picker.getByRole('button', { name: 'Cancel' }).click();
    await picker.waitFor({ state: 'hidden' });
    s.done();
  });

  it('SIMs, filtered, searched with letters; Import SIMs and its report of bad lines', async () => {
    const page = await browser.page({ as: ADMIN, viewport: NARROW, path: '/sims' });
    const s = states();
    await s.check(page, 'SIMs', { regions: 1 });
    await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Active' });
    await page.getByRole('button', { name: 'Search' }).click();
    await htmxSettled(page);
    await s.check(page, 'SIMs: Active', { regions: 1 });
    await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'All statuses' });
    await page.getByRole('searchbox', { name: 'Search' }).fill('meter');
    await page.getByRole('button', { name: 'Search' }).click();
    await htmxSettled(page);
    await page.getByText('Only digits are searched, and “meter” has other characters in it.').waitFor();
    await s.check(page, 'SIMs: letters searched');

    await page.goto('/sims');
    await page.getByRole('link', { name: 'Import SIMs' }).click();
    await page.getByRole('heading', { level: 1, name: 'Import SIMs' }).waitFor();
    await s.check(page, 'Import SIMs');
    await page.getByLabel('CSV file').setInputFiles({
      name: 'bad.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('iccid,imsi,eid,msisdn\n8944100000000000018,234151000000001,,\n12345,999,,\n'),
    });
    await page.getByRole('button', { name: 'Import SIMs' }).click();
    await page.getByRole('heading', { name: 'Problems in bad.csv' }).waitFor();
    await s.check(page, 'Import SIMs: refused, with the report');
    s.done();
  });

  it('Bulk changes (upload, a preview with problems, a job running and finished), Webhooks, API tokens', async () => {
    const page = await browser.page({ as: ADMIN, viewport: NARROW, path: '/bulk' });
    const s = states();
    await page.getByRole('heading', { level: 1, name: 'Bulk changes' }).waitFor();
    await s.check(page, 'Bulk changes');
    await page.getByLabel('CSV file').setInputFiles({
      name: 'changes.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('endpoint_id,action,iccid\nabc,link,\n999999999,activate,\n'),
    });
    await page.getByRole('button', { name: 'Preview changes' }).click();
    await page.getByRole('heading', { level: 1, name: 'Preview of changes.csv' }).waitFor();
    await s.check(page, 'Bulk changes: preview with rows that cannot be done');
    // A job of one row (activate a Pre-Active endpoint no other test uses): the job page waiting or running, then finished.
    await page.goto(`/endpoints?q=${encodeURIComponent(SCENARIO.reflowBulk.preActive)}`);
    const href = await page.getByRole('link', { name: SCENARIO.reflowBulk.preActive, exact: true }).getAttribute('href');
    const endpointId = Number(/\/endpoints\/(\d+)$/.exec(href ?? '')![1]);
    await page.goto('/bulk');
    await page.getByLabel('CSV file').setInputFiles({
      name: 'narrow.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`endpoint_id,action,iccid\n${endpointId},activate,\n`),
    });
    await page.getByRole('button', { name: 'Preview changes' }).click();
    await page.getByRole('button', { name: 'Apply 1 change' }).click();
    await page.getByRole('dialog', { name: 'Are you sure you want to continue?' }).getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('heading', { level: 1, name: 'Bulk change: narrow.csv' }).waitFor();
    await page.getByRole('progressbar').waitFor();
    // The runner polls every second and a row takes milliseconds: rarely, the job is over before the page is looked at.
    if (await page.getByRole('link', { name: 'Refresh' }).count()) await s.check(page, 'Bulk changes: the job, waiting or running');
    else console.log('reflow: the bulk job finished before its running state could be looked at (its finished state is)');
    await page.getByText('1 done').waitFor({ timeout: 30_000 });
    await htmxSettled(page);
    await page.getByRole('link', { name: 'Download the results (CSV)' }).waitFor();
    await s.check(page, 'Bulk changes: the job, finished');
    await page.goto('/settings/webhooks');
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await s.check(page, 'Webhooks');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.getByText('Enter the URL that will receive the webhooks').first().waitFor();
    await s.check(page, 'Webhooks: the form refused');
    await page.goto('/settings/api-tokens');
    await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
    await s.check(page, 'API tokens');
    s.done();
  });

  it('a webhook: its secret shown once, the list, its page with the delivery log, the delete confirmation', async () => {
    // A receiver on 127.0.0.1 (the e2e app allows private addresses), for an attempt in the log.
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('{"received":true}'));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/sim-link/acme-logistics-production-endpoints`;
    try {
      const page = await browser.page({ as: ADMIN, viewport: NARROW, path: '/settings/webhooks' });
      const s = states();
      await page.getByRole('textbox', { name: 'URL' }).fill(url);
      await page.getByRole('button', { name: 'Add webhook' }).click();
      await page.getByRole('heading', { level: 2, name: `Signing secret of the webhook to ${url}` }).waitFor();
      await s.check(page, 'Webhooks: the new webhook’s secret', { regions: 1 });
      await page.getByRole('link', { name: url, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: `Webhook to ${url}` }).waitFor();
      await s.check(page, 'Webhook: nothing sent yet');
      await page.getByRole('button', { name: 'Send test event' }).click();
      await messages(page).getByText('Test event queued').waitFor();
      const log = page.getByRole('table', { name: /attempts?, newest first/ });
      for (let tries = 0; !(await log.count()); tries++) {
        if (tries === 50) throw new Error('the test event did not reach the delivery log within 10 s');
        await page.waitForTimeout(200);
        await page.reload();
      }
      await s.check(page, 'Webhook: the delivery log', { regions: 1 });
      await page.getByRole('link', { name: 'Delete' }).click();
      const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
      await confirmation.waitFor();
      await htmxSettled(page);
      await s.check(page, 'Webhook: delete confirmation');
      await confirmation.getByRole('button', { name: 'Yes' }).click();
      await messages(page).getByText(`Webhook to ${url} deleted`).waitFor();
      s.done();
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});

describe('forced colours (Windows High Contrast)', () => {
  const browser = useBrowser();

  it('buttons, links styled as buttons, fields, the dialog and focus stay visible', async () => {
    const page = await browser.page({ as: ADMIN });
    await page.emulateMedia({ forcedColors: 'active' });
    expect(await page.evaluate(() => window.matchMedia('(forced-colors: active)').matches)).toBe(true);
    const problems: string[] = [];
    const border = (locator: Locator, what: string) =>
      locator.evaluate((element, what) => {
        const style = getComputedStyle(element);
        const sides = ['Top', 'Right', 'Bottom', 'Left'].filter((side) => {
          const s = style as unknown as Record<string, string>;
          return (
            s[`border${side}Style`] !== 'none' &&
            parseFloat(s[`border${side}Width`]) >= 1 &&
            !/rgba\(.*,\s*0\)$|transparent/.test(s[`border${side}Color`])
          );
        });
        return sides.length === 4 ? null : `${what} has no visible border on every side in forced colours (${sides.join(', ') || 'none'})`;
      }, what);
    /** Tabs to the element and checks that its focus indicator is visible (an outline: box-shadows are dropped). */
    const focus = async (locator: Locator, what: string) => {
      await tabTo(page, locator, { max: 60 });
      const indicator = await focusIndicator(page);
      const outline = await locator.evaluate((element) => {
        const style = getComputedStyle(element);
        return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
      });
      if (!indicator.visible || !outline) problems.push(`${what}: no visible focus outline in forced colours (${indicator.detail})`);
    };

    const create = page.getByRole('link', { name: 'Create endpoint' });
    const filter = page.getByRole('button', { name: 'Filter' });
    for (const [locator, what] of [
      [create, 'the link "Create endpoint"'],
      [filter, 'the button "Filter"'],
      [page.getByRole('searchbox', { name: 'Search' }), 'the search box'],
    ] as const) {
      const missing = await border(locator, what);
      if (missing) problems.push(missing);
    }
    await focus(page.getByRole('searchbox', { name: 'Search' }), 'the search box');
    await focus(filter, 'the button "Filter"');
    await focus(page.getByRole('region', { name: 'Endpoints' }), 'the table region');

    await openEndpoint(page, SCENARIO.axeHold.endpoint);
    const link = page.getByRole('link', { name: 'Link SIM' });
    const missing = await border(link, 'the link "Link SIM"');
    if (missing) problems.push(missing);
    await focus(link, 'the link "Link SIM"');
    await page.keyboard.press('Enter');
    const picker = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await picker.getByRole('radio').first().waitFor();
    const dialogBorder = await border(picker, 'the dialog');
    if (dialogBorder) problems.push(dialogBorder);
    for (const name of ['Attach SIM', 'Cancel']) {
      const buttonBorder = await border(picker.getByRole('button', { name, exact: true }), `the button "${name}"`);
      if (buttonBorder) problems.push(buttonBorder);
    }
    await focus(picker.getByRole('button', { name: 'Attach SIM' }), 'the button "Attach SIM"');
    await page.keyboard.press('Escape');
    await picker.waitFor({ state: 'hidden' });
    expect(problems.join('\n')).toBe('');
  });
});

describe('one button style', () => {
  const browser = useBrowser();

  /** The element's height, and how far its label's centre is from its own vertical centre. */
  const geometry = (locator: Locator) =>
    locator.evaluate((element) => {
      const box = element.getBoundingClientRect();
      const range = document.createRange();
      range.selectNodeContents(element);
      const text = range.getBoundingClientRect();
      return { height: box.height, offCentre: Math.abs(text.top + text.height / 2 - (box.top + box.height / 2)) };
    });

  it('a link styled as a button is as tall as a real button, its label centred', async () => {
    const page = await browser.page({ as: ADMIN });
    for (const [path, linkName, buttonName] of [
      ['/endpoints', 'Create endpoint', 'Filter'],
      ['/sims', 'Import SIMs', 'Search'],
    ]) {
      await page.goto(path);
      const link = await geometry(page.getByRole('link', { name: linkName }));
      const button = await geometry(page.getByRole('button', { name: buttonName, exact: true }));
      expect(link.height, `${linkName} (link) vs ${buttonName} (button)`).toBeCloseTo(button.height, 1);
      expect(link.offCentre, `${linkName}'s label is centred`).toBeLessThanOrEqual(1);
      expect(button.offCentre, `${buttonName}'s label is centred`).toBeLessThanOrEqual(1);
    }
    await openEndpoint(page, SCENARIO.states.hold);
    const linkSim = await geometry(page.getByRole('link', { name: 'Link SIM' }));
    await openEndpoint(page, SCENARIO.states.preActive);
    const activate = await geometry(page.getByRole('button', { name: 'Activate', exact: true }));
    expect(linkSim.height, 'Link SIM (link) vs Activate (button)').toBeCloseTo(activate.height, 1);
    expect(linkSim.offCentre).toBeLessThanOrEqual(1);
  });
});
