// Keyboard only: the whole flow with Tab, Shift+Tab, arrow keys, Enter, Space and Escape — no clicks, no
// fill(). At every step the focused element shows a visible focus indicator; while the dialog is open focus
// stays inside it; Escape closes it and focus returns to Link SIM; No returns focus to what opened it.
import { describe, expect, it } from 'vitest';
import { details, htmxSettled, isFocused, messages, waitForStatus, DEMO_PASSWORD } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { checkFocus, press, tabTo } from './support/keyboard.js';
import { useBrowser } from './support/suite.js';

describe('keyboard only', () => {
  const browser = useBrowser();
  const fixture = SCENARIO.keyboard;
  const iccid = fixture.sims.iccids[fixture.pick];

  it('signs in, links a SIM chosen with the arrow keys, and de-links it', async () => {
    const page = await browser.page();
    await page.goto('/endpoints');

    // Sign in: the skip link comes first, then the form.
    const skip = page.getByRole('link', { name: 'Skip to main content' });
    await press(page, 'Tab');
    expect(await isFocused(skip)).toBe(true);
    await tabTo(page, page.getByRole('textbox', { name: 'Email' }));
    await page.keyboard.type(ADMIN);
    await tabTo(page, page.getByLabel('Password'));
    await page.keyboard.type(DEMO_PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Endpoints' }).waitFor();

    // Search the list for the endpoint and open it.
    await tabTo(page, page.getByRole('searchbox', { name: 'Search' }));
    await page.keyboard.type(fixture.endpoint);
    await page.keyboard.press('Enter');
    await htmxSettled(page);
    const link = page.getByRole('table', { name: 'Endpoints' }).getByRole('link', { name: fixture.endpoint, exact: true });
    expect(await page.getByRole('table', { name: 'Endpoints' }).getByRole('row').count()).toBe(2);
    await tabTo(page, link);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: fixture.endpoint }).waitFor();
    expect(await details(page)).toMatchObject({ Status: 'Hold', 'Activate Immediately': 'No' });

    // Link SIM opens the dialog with focus in its search box; Escape closes it, focus back on Link SIM.
    const linkSim = page.getByRole('link', { name: 'Link SIM' });
    await tabTo(page, linkSim);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await dialog.waitFor();
    const search = dialog.getByRole('searchbox', { name: 'Search' });
    await waitForFocus(search);
    await checkFocus(page, []);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await waitForFocus(linkSim);
    await checkFocus(page, []);

    // Again: Enter on Link SIM, search for ten SIMs by ICCID prefix (Enter submits the search).
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await waitForFocus(search);
    await page.keyboard.type(fixture.sims.prefix);
    await page.keyboard.press('Enter');
    await htmxSettled(page);
    await dialog.getByText(`10 SIMs match “${fixture.sims.prefix}”`).waitFor();
    expect(await isFocused(search)).toBe(true);

    // Focus stays in the dialog: round trips with Tab and Shift+Tab (checked at every step).
    const trail: string[] = [];
    for (let i = 0; i < 12; i++) await press(page, 'Tab', trail);
    for (let i = 0; i < 12; i++) await press(page, 'Shift+Tab', trail);
    expect(trail.filter((step) => step !== '(browser UI)').length).toBeGreaterThan(15);

    // Into the radio group (Tab lands on the first radio), then the arrow keys choose.
    const radios = dialog.getByRole('radio');
    await tabTo(page, radios.first());
    expect(await radios.first().isChecked()).toBe(false);
    for (let i = 0; i < fixture.pick; i++) await press(page, 'ArrowDown');
    const chosen = dialog.getByRole('radio', { name: `Select SIM ${iccid}` });
    expect(await isFocused(chosen)).toBe(true);
    expect(await chosen.isChecked()).toBe(true);
    await press(page, 'ArrowUp');
    await press(page, 'ArrowDown');
    expect(await chosen.isChecked()).toBe(true);
    // Space on the focused, already checked radio keeps it checked.
    await press(page, 'Space');
    expect(await chosen.isChecked()).toBe(true);

    // Attach SIM → the confirmation in the same dialog, focus on its heading → Tab to Yes, Space.
    await tabTo(page, dialog.getByRole('button', { name: 'Attach SIM' }));
    await page.keyboard.press('Enter');
    const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.waitFor();
    await waitForFocus(confirmation.getByRole('heading', { name: 'Are you sure you want to continue?' }));
    await checkFocus(page, []);
    expect(await confirmation.innerText()).toContain(`Link SIM ${iccid} to endpoint '${fixture.endpoint}'.`);
    await tabTo(page, confirmation.getByRole('button', { name: 'Yes' }));
    await page.keyboard.press('Space');
    await messages(page).getByText(`SIM ${iccid} linked successfully`).waitFor();
    await waitForStatus(page, 'Pre-Active');
    expect(await details(page)).toMatchObject({ ICCID: iccid });

    // De-link: No (Space) closes the dialog and returns focus to De-link, nothing changed.
    const delink = page.getByRole('button', { name: 'De-link' });
    await tabTo(page, delink);
    await page.keyboard.press('Enter');
    const confirmDelink = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmDelink.waitFor();
    await tabTo(page, confirmDelink.getByRole('button', { name: 'No' }));
    await page.keyboard.press('Space');
    await confirmDelink.waitFor({ state: 'hidden' });
    await waitForFocus(delink);
    await checkFocus(page, []);
    expect(await details(page)).toMatchObject({ Status: 'Pre-Active', ICCID: iccid });

    // De-link again: Shift+Tab from No reaches Yes; Enter.
    await page.keyboard.press('Enter');
    await confirmDelink.waitFor();
    await tabTo(page, confirmDelink.getByRole('button', { name: 'No' }));
    await tabTo(page, confirmDelink.getByRole('button', { name: 'Yes' }), { backwards: true });
    await page.keyboard.press('Enter');
    await messages(page).getByText(`SIM ${iccid} de-linked successfully`).waitFor();
    await waitForStatus(page, 'Hold');
    await tabTo(page, page.getByRole('link', { name: 'Link SIM' }));
  });
});

async function waitForFocus(locator: import('playwright-core').Locator): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if ((await locator.count()) === 1 && (await isFocused(locator))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${locator} did not receive focus`);
}
