// Create endpoint with a SIM: Activate Immediately on (the SIM chosen in the picker, which fills the ICCID
// field) → both Active; off (the ICCID typed) → both Pre-Active. And the GOV.UK error summary for a bad IMEI:
// 422, title "Error: …", "There is a problem" linking to the field, the message beside it, values kept.
import { describe, expect, it } from 'vitest';
import { describeFocus, details, isFocused, messages, searchPicker, waitForStatus } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

describe('Create endpoint', () => {
  const browser = useBrowser();

  it('with a SIM chosen in the picker, Activate Immediately on → Active', async () => {
    const { name, sim } = SCENARIO.create.activateOn;
    const page = await browser.page({ as: ADMIN });
    await page.getByRole('link', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create endpoint' }).waitFor();
    await page.getByRole('textbox', { name: 'Name' }).fill(name);
    await page.getByRole('checkbox', { name: 'Activate Immediately' }).check();

    await page.getByRole('button', { name: 'Choose a SIM' }).click();
    const dialog = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await dialog.waitFor();
    await searchPicker(page, dialog, sim.prefix, '1 SIM matches');
    await dialog.getByRole('radio', { name: `Select SIM ${sim.iccid}` }).check();
    await dialog.getByRole('button', { name: 'Attach SIM' }).click();

    // The dialog closes and the ICCID field holds the chosen SIM, focused; the other values are kept.
    await dialog.waitFor({ state: 'hidden' });
    const iccidField = page.getByRole('textbox', { name: 'SIM to link now (optional): ICCID' });
    expect(await iccidField.inputValue()).toBe(sim.iccid);
    // Focus is not lost: it is on the filled field or back on the button that opened the picker (today the
    // latter — the dialog's close handler returns focus to its opener after app.js focused the field).
    const chooseButton = page.getByRole('button', { name: 'Choose a SIM' });
    expect((await isFocused(iccidField)) || (await isFocused(chooseButton)), await describeFocus(page)).toBe(true);
    expect(await page.getByRole('textbox', { name: 'Name' }).inputValue()).toBe(name);
    expect(await page.getByRole('checkbox', { name: 'Activate Immediately' }).isChecked()).toBe(true);

    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
    await messages(page).getByText(`Endpoint '${name}' created successfully; SIM ${sim.iccid} linked, both Active`).waitFor();
    await waitForStatus(page, 'Active');
    expect(await details(page)).toMatchObject({ 'Activate Immediately': 'Yes', ICCID: sim.iccid, 'SIM status': 'Active' });
  });

  it('with a typed ICCID, Activate Immediately off → Pre-Active', async () => {
    const { name, sim } = SCENARIO.create.activateOff;
    const page = await browser.page({ as: ADMIN, path: '/endpoints/new' });
    await page.getByRole('textbox', { name: 'Name' }).fill(name);
    expect(await page.getByRole('checkbox', { name: 'Activate Immediately' }).isChecked()).toBe(false);
    await page.getByRole('textbox', { name: 'SIM to link now (optional): ICCID' }).fill(sim.iccid);
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
    await messages(page).getByText(`Endpoint '${name}' created successfully; SIM ${sim.iccid} linked, both Pre-Active`).waitFor();
    await waitForStatus(page, 'Pre-Active');
    expect(await details(page)).toMatchObject({ 'Activate Immediately': 'No', ICCID: sim.iccid, 'SIM status': 'Pre-Active' });
  });

  it('shows the error summary for a bad IMEI (422), linking to the field', async () => {
    const page = await browser.page({ as: ADMIN, path: '/endpoints/new' });
    await page.getByRole('textbox', { name: 'Name' }).fill('E2E bad IMEI');
    await page.getByRole('textbox', { name: 'IMEI (optional)' }).fill('12345');
    const answer = page.waitForResponse(
      (response) => response.request().method() === 'POST' && new URL(response.url()).pathname === '/endpoints',
    );
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    const response = await answer;
    expect(response.status()).toBe(422);
    expect(await response.text()).toContain('There is a problem');

    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    expect(await page.title()).toBe('Error: Create endpoint – SIM Link');
    const summary = page.getByRole('alert');
    const link = summary.getByRole('link', { name: 'IMEI must be exactly 15 digits' });
    expect(await link.count()).toBe(1);

    // The link points at the IMEI field, which carries the same message, marked invalid; values are kept.
    const imei = page.getByRole('textbox', { name: 'IMEI (optional)' });
    expect(await link.getAttribute('href')).toBe(`#${await imei.getAttribute('id')}`);
    expect(await imei.getAttribute('aria-invalid')).toBe('true');
    expect(await imei.inputValue()).toBe('12345');
    expect(await page.getByRole('textbox', { name: 'Name' }).inputValue()).toBe('E2E bad IMEI');
    const describedBy = (await imei.getAttribute('aria-describedby'))!.split(' ');
    const messagesBesideField = await Promise.all(describedBy.map((id) => page.locator(`[id="${id}"]`).innerText()));
    expect(messagesBesideField.join(' ')).toContain('IMEI must be exactly 15 digits');

    // Following the link brings the field into view.
    await link.click();
    expect(new URL(page.url()).hash).toBe('#imei');
    expect(await imei.isVisible()).toBe(true);
  });
});
