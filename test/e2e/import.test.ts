// Import SIMs (issue 7): an admin uploads a supplier CSV, sees the SIMs in the inventory and links one of
// them from the picker; a file with one bad line imports nothing and names the line.
import { describe, expect, it } from 'vitest';
import { eidFor, iccidFor, imsiFor } from '../../src/db/generate-identifiers.js';
import { htmxSettled, messages, openEndpoint, searchPicker, waitForStatus } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

/** Identifiers of a series no demo or other scenario uses. */
const SERIES = 61;
const sims = [1, 2, 3].map((n) => ({ iccid: iccidFor(SERIES, n), imsi: imsiFor(SERIES, n), eid: eidFor(SERIES, n) }));

describe('Import SIMs', () => {
  const browser = useBrowser();

  it('imports a file, shows its SIMs in the inventory, and one of them can be linked', async () => {
    const page = await browser.page({ as: ADMIN });
    await page.getByRole('link', { name: 'SIMs' }).click();
    await page.getByRole('link', { name: 'Import SIMs' }).click();
    await page.getByRole('heading', { level: 1, name: 'Import SIMs' }).waitFor();
    const csv = `ICCID;IMSI;EID;MSISDN\r\n${sims.map((s) => `"${s.iccid}";${s.imsi};${s.eid};`).join('\r\n')}\r\n`;
    await page
      .getByLabel('CSV file')
      .setInputFiles({ name: 'supplier-batch.csv', mimeType: 'text/csv', buffer: Buffer.from(`\ufeff${csv}`) });
    await page.getByRole('button', { name: 'Import SIMs' }).click();
    await messages(page).getByText('3 SIMs imported').waitFor();

    // In the inventory, Ready to Activate.
    await page.goto(`/sims?q=${sims[0].iccid.slice(0, 8)}`);
    for (const sim of sims) await page.getByRole('cell', { name: sim.iccid, exact: true }).waitFor();

    // And in the picker of a Hold endpoint: link the second one.
    const { endpoint } = SCENARIO.import;
    await openEndpoint(page, endpoint);
    await page.getByRole('link', { name: 'Link SIM' }).click();
    const dialog = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await dialog.waitFor();
    await searchPicker(page, dialog, sims[1].iccid, '1 SIM matches');
    await dialog.getByRole('radio', { name: `Select SIM ${sims[1].iccid}` }).click();
    await dialog.getByRole('button', { name: 'Attach SIM' }).click();
    await page.getByRole('dialog', { name: 'Are you sure you want to continue?' }).getByRole('button', { name: 'Yes' }).click();
    await messages(page).getByText(`SIM ${sims[1].iccid} linked successfully`).waitFor();
    await waitForStatus(page, 'Active');
  });

  it('a file with one bad line imports nothing and says which line is wrong', async () => {
    const page = await browser.page({ as: ADMIN });
    await page.goto('/sims/import');
    const good = { iccid: iccidFor(SERIES, 10), imsi: imsiFor(SERIES, 10) };
    const badIccid = `${iccidFor(SERIES, 11).slice(0, -1)}${(Number(iccidFor(SERIES, 11).at(-1)) + 1) % 10}`;
    const csv = `iccid,imsi,eid,msisdn\n${good.iccid},${good.imsi},,\n${badIccid},${imsiFor(SERIES, 11)},,\n`;
    await page.getByLabel('CSV file').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Import SIMs' }).click();
    await htmxSettled(page);
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    const report = page.getByRole('table', { name: 'Problems found' });
    await report.waitFor();
    const cells = await report.getByRole('row').nth(1).getByRole('cell').allInnerTexts();
    expect(cells[0]).toBe('3');
    expect(cells[2]).toContain('ICCID check digit is wrong');
    // Nothing imported: the good line's SIM is not in the inventory either.
    await page.goto(`/sims?q=${good.iccid}`);
    expect(await page.getByRole('cell', { name: good.iccid, exact: true }).count()).toBe(0);
  });
});
