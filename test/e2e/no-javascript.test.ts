// JavaScript disabled: the same flow as full pages — the picker at its own URL, the search and Attach SIM as
// plain GET forms, the confirmation a page of its own, Yes a POST answered 303 → the endpoint page with the
// message. Nothing opens in a dialog.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { details, messages, waitForStatus } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

describe('JavaScript disabled', () => {
  const browser = useBrowser();
  const fixture = SCENARIO.noJs;

  const path = (page: Page) => new URL(page.url()).pathname;

  it('links and de-links a SIM through full pages', async () => {
    const page = await browser.page({ as: ADMIN, javaScriptEnabled: false });
    const { iccid, prefix } = fixture.sim;
    // The page's own scripts did not run (Playwright's evaluate still works).
    expect(await page.evaluate(() => typeof (window as unknown as { htmx?: unknown }).htmx)).toBe('undefined');

    await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Hold' });
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((url) => url.searchParams.get('status') === 'hold');
    await page.getByRole('table', { name: 'Endpoints, Hold' }).getByRole('link', { name: fixture.endpoint, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: fixture.endpoint }).waitFor();
    const endpointPath = path(page);
    expect(await details(page)).toMatchObject({ Status: 'Hold', 'Activate Immediately': 'Yes' });

    // Link SIM is a link to the picker page.
    await page.getByRole('link', { name: 'Link SIM' }).click();
    await page.waitForURL((url) => url.pathname === `${endpointPath}/sim/new`);
    expect(await page.title()).toBe('Select SIM to attach – SIM Link');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await page.getByRole('heading', { level: 1, name: 'Select SIM to attach' }).waitFor();

    // Attach SIM with nothing chosen: the picker again, 422, with the GOV.UK error.
    const refused = page.waitForResponse((response) => new URL(response.url()).pathname === `${endpointPath}/sim/confirm`);
    await page.getByRole('button', { name: 'Attach SIM' }).click();
    expect((await refused).status()).toBe(422);
    expect(await page.title()).toBe('Error: Select SIM to attach – SIM Link');
    const summary = page.getByRole('alert');
    expect(await summary.getByRole('heading', { name: 'There is a problem' }).count()).toBe(1);
    expect(await summary.getByRole('link', { name: 'Select a SIM to attach' }).count()).toBe(1);

    // Search by the ICCID prefix: a GET of the picker page.
    await page.getByRole('searchbox', { name: 'Search' }).fill(prefix);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('q') === prefix);
    await page.getByText(`1 SIM matches “${prefix}”`).waitFor();
    await page.getByRole('radio', { name: `Select SIM ${iccid}` }).check();
    await page.getByRole('button', { name: 'Attach SIM' }).click();

    // The confirmation is a page; Yes posts, 303 → the endpoint page with the message.
    await page.waitForURL((url) => url.pathname === `${endpointPath}/sim/confirm`);
    expect(await page.title()).toBe('Are you sure you want to continue? – SIM Link');
    expect(await page.getByRole('main').innerText()).toContain(`Link SIM ${iccid} to endpoint '${fixture.endpoint}'.`);
    const linked = page.waitForResponse((response) => response.request().method() === 'POST');
    await page.getByRole('button', { name: 'Yes' }).click();
    expect((await linked).status()).toBe(303);
    await page.waitForURL((url) => url.pathname === endpointPath);
    await messages(page).getByText(`SIM ${iccid} linked successfully`).waitFor();
    await waitForStatus(page, 'Active');
    expect(await details(page)).toMatchObject({ ICCID: iccid, 'SIM status': 'Active' });

    // De-link → No: back on the endpoint page, nothing changed.
    await page.getByRole('button', { name: 'De-link' }).click();
    await page.waitForURL((url) => url.pathname === `${endpointPath}/sim/delete`);
    expect(await page.getByRole('main').innerText()).toContain(`De-link SIM ${iccid} from endpoint '${fixture.endpoint}'.`);
    await page.getByRole('button', { name: 'No' }).click();
    await page.waitForURL((url) => url.pathname === endpointPath);
    expect(await details(page)).toMatchObject({ Status: 'Active', ICCID: iccid });

    // De-link → Yes → Hold.
    await page.getByRole('button', { name: 'De-link' }).click();
    await page.waitForURL((url) => url.pathname === `${endpointPath}/sim/delete`);
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.waitForURL((url) => url.pathname === endpointPath);
    await messages(page).getByText(`SIM ${iccid} de-linked successfully`).waitFor();
    await waitForStatus(page, 'Hold');
    await page.getByRole('link', { name: 'Link SIM' }).waitFor();
  });
});
