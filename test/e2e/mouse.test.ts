// Mouse, JavaScript on: sign in → Endpoints → a Hold endpoint → Link SIM (the picker opens in a modal
// dialog with focus inside) → search by an ICCID prefix → choose → Attach SIM → Yes → "linked successfully",
// Active or Pre-Active as Activate Immediately says → De-link → Yes → Hold. Once per Activate Immediately.
import { describe, expect, it } from 'vitest';
import { details, htmxSettled, messages, searchPicker, waitForStatus } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

describe('mouse, JavaScript on', () => {
  const browser = useBrowser();

  for (const fixture of [SCENARIO.mouse.activateOn, SCENARIO.mouse.activateOff]) {
    const expected = fixture.activateImmediately ? 'Active' : 'Pre-Active';
    it(`links and de-links a SIM; Activate Immediately ${fixture.activateImmediately ? 'on' : 'off'} → ${expected}`, async () => {
      const page = await browser.page({ as: ADMIN });
      const { iccid, prefix } = fixture.sim;

      // The list, filtered to Hold, then the endpoint.
      await page.getByRole('link', { name: 'Endpoints' }).click();
      await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Hold' });
      await page.getByRole('button', { name: 'Filter' }).click();
      await htmxSettled(page);
      const table = page.getByRole('table', { name: 'Endpoints, Hold' });
      await table.waitFor();
      expect(await table.getByRole('columnheader').allInnerTexts()).toEqual(['Name', 'Status', 'ICCID', 'IMEI']);
      await table.getByRole('link', { name: fixture.endpoint, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: fixture.endpoint }).waitFor();
      expect(await details(page)).toMatchObject({ Status: 'Hold', 'Activate Immediately': fixture.activateImmediately ? 'Yes' : 'No' });

      // Link SIM opens the picker in a modal dialog, with focus inside it.
      await page.getByRole('link', { name: 'Link SIM' }).click();
      const dialog = page.getByRole('dialog', { name: 'Select SIM to attach' });
      await dialog.waitFor();
      expect(await dialog.evaluate((element) => element.matches(':modal'))).toBe(true);
      expect(await dialog.evaluate((element) => element.contains(document.activeElement))).toBe(true);

      // Search by an ICCID prefix; the table shows the one SIM that matches.
      await dialog.getByRole('searchbox', { name: 'Search' }).click();
      await searchPicker(page, dialog, prefix, '1 SIM matches');
      const picker = dialog.getByRole('table', { name: 'Ready to Activate SIMs, in ICCID order' });
      expect(await picker.getByRole('columnheader').allInnerTexts()).toEqual(['Action', 'EID', 'ICCID', 'IMSI', 'Status']);
      expect(await picker.getByRole('radio').count()).toBe(1);
      await picker.getByRole('radio', { name: `Select SIM ${iccid}` }).click();
      await dialog.getByRole('button', { name: 'Attach SIM' }).click();

      // The confirmation names the SIM, the endpoint and what will happen.
      const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
      await confirmation.waitFor();
      const text = await confirmation.innerText();
      expect(text).toContain(`Link SIM ${iccid} to endpoint '${fixture.endpoint}'.`);
      expect(text).toContain(expected);
      await confirmation.getByRole('button', { name: 'Yes' }).click();

      await messages(page).getByText(`SIM ${iccid} linked successfully`).waitFor();
      await waitForStatus(page, expected);
      expect(await details(page)).toMatchObject({ ICCID: iccid, 'SIM status': expected });
      const history = page.getByRole('table', { name: `History of ${fixture.endpoint}, newest first` });
      expect(await history.getByRole('row').nth(1).innerText()).toContain(iccid);
      expect(await page.getByRole('link', { name: 'Link SIM' }).count()).toBe(0);

      // De-link → Yes → Hold, the SIM back in the inventory.
      await page.getByRole('button', { name: 'De-link' }).click();
      const delink = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
      await delink.waitFor();
      expect(await delink.innerText()).toContain(`De-link SIM ${iccid} from endpoint '${fixture.endpoint}'.`);
      await delink.getByRole('button', { name: 'Yes' }).click();
      await messages(page).getByText(`SIM ${iccid} de-linked successfully`).waitFor();
      await waitForStatus(page, 'Hold');
      await page.getByRole('link', { name: 'Link SIM' }).waitFor();
      expect(Object.keys(await details(page))).not.toContain('ICCID');
    });
  }
});
