// Bulk changes by keyboard alone, with axe on every state: upload a CSV → the preview → Apply N changes →
// "Are you sure you want to continue?" → Yes → the job page's progress, updated in place until it is finished
// → Download the results (CSV), whose rows say done; the endpoints changed as the file said.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { htmxSettled, waitForStatus } from './support/browser.js';
import { scan, describe as describeReport, type ScanReport } from './support/axe.js';
import { tabTo } from './support/keyboard.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

/** The id of a demo endpoint, from its link in the endpoints list. */
async function endpointId(page: Page, name: string): Promise<number> {
  await page.goto(`/endpoints?q=${encodeURIComponent(name)}`);
  const href = await page.getByRole('link', { name, exact: true }).getAttribute('href');
  return Number(/\/endpoints\/(\d+)$/.exec(href ?? '')![1]);
}

describe('Bulk changes', () => {
  const browser = useBrowser();

  it('upload → preview → Apply → Yes → progress → results, by keyboard, with axe', async () => {
    const { hold, preActive, sim } = SCENARIO.bulk;
    const page = await browser.page({ as: ADMIN });
    const holdId = await endpointId(page, hold);
    const preActiveId = await endpointId(page, preActive);
    const reports: ScanReport[] = [];

    await page.goto('/endpoints');
    await tabTo(page, page.getByRole('link', { name: 'Bulk changes' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Bulk changes' }).waitFor();
    reports.push(await scan(page, 'Bulk changes'));
    // Choosing the file is the operating system's dialog; the rest is the keyboard.
    await page.getByLabel('CSV file').setInputFiles({
      name: 'keyboard.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`endpoint_id,action,iccid\n${holdId},link,${sim.iccid}\n${preActiveId},activate,\n999999999,suspend,\n`),
    });
    await tabTo(page, page.getByRole('button', { name: 'Preview changes' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Preview of keyboard.csv' }).waitFor();
    await page.getByText('2 can be done').waitFor();
    await page.getByRole('cell', { name: 'There is no endpoint 999999999' }).waitFor();
    reports.push(await scan(page, 'Bulk changes: the preview'));

    await tabTo(page, page.getByRole('button', { name: 'Apply 2 changes' }));
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await dialog.waitFor();
    await dialog.getByText('Apply 2 changes from keyboard.csv.').waitFor();
    reports.push(await scan(page, 'Bulk changes: the confirmation'));
    await tabTo(page, dialog.getByRole('button', { name: 'Yes' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Bulk change: keyboard.csv' }).waitFor();
    await page.getByRole('progressbar').waitFor();
    reports.push(await scan(page, 'Bulk changes: the job, running'));

    // The progress is updated in place (htmx, every 2 s) until the job is finished.
    await page.getByText('2 done').waitFor({ timeout: 30_000 });
    await htmxSettled(page);
    expect(await page.getByRole('progressbar').getAttribute('value')).toBe('2');
    reports.push(await scan(page, 'Bulk changes: the job, finished'));
    const download = page.waitForEvent('download');
    await tabTo(page, page.getByRole('link', { name: 'Download the results (CSV)' }));
    await page.keyboard.press('Enter');
    const file = await download;
    const chunks: Buffer[] = [];
    for await (const chunk of (await file.createReadStream()) as AsyncIterable<Buffer>) chunks.push(chunk);
    const lines = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/^\ufeff/, '')
      .trim()
      .split('\r\n');
    expect(lines[0]).toBe('line,endpoint_id,action,iccid,outcome,message');
    expect(lines.slice(1).map((line) => line.split(',').slice(0, 5).join(','))).toEqual([
      `2,${holdId},link,${sim.iccid},done`,
      `3,${preActiveId},activate,,done`,
      '4,999999999,suspend,,cannot be done',
    ]);

    await page.goto(`/endpoints/${holdId}`);
    await waitForStatus(page, 'Pre-Active');
    await page.goto(`/endpoints/${preActiveId}`);
    await waitForStatus(page, 'Active');
    const problems = reports.filter((report) => report.violations.length || report.unreviewed.length).map(describeReport);
    expect(problems.join('\n'), `${reports.length} states scanned by axe`).toBe('');
  }, 90_000);
});
