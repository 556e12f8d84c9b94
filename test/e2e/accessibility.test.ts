// axe-core on every page and state a person meets (WCAG 2.0/2.1/2.2 A and AA, target-size on): zero
// violations, and no incomplete result that support/axe.ts's ACCEPTED_INCOMPLETE does not explain. Each
// test gathers the reports of its states and fails once, listing every problem of every state.
import { afterAll, describe, expect, it } from 'vitest';
import { htmxSettled, messages, openEndpoint, searchPicker, signIn, waitForStatus } from './support/browser.js';
import { scan, describe as describeReport, type ScanReport } from './support/axe.js';
import { ADMIN, SCENARIO, VIEWER } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

describe('accessibility (axe-core)', () => {
  const browser = useBrowser();
  const accepted: Record<string, number> = {};

  function check(reports: ScanReport[]) {
    for (const report of reports)
      for (const [rule, count] of Object.entries(report.accepted)) accepted[rule] = (accepted[rule] ?? 0) + count;
    const problems = reports.filter((report) => report.violations.length || report.unreviewed.length).map(describeReport);
    expect(problems.join('\n\n'), `${reports.length} states scanned`).toBe('');
  }

  afterAll(() => {
    const summary = Object.entries(accepted).map(([rule, count]) => `${rule} ×${count}`);
    console.log(`axe: accepted incomplete results (reviewed, see support/axe.ts): ${summary.length ? summary.join(', ') : 'none'}`);
  });

  it('sign-in, with and without an error', async () => {
    const page = await browser.page();
    const reports: ScanReport[] = [];
    await page.goto('/sign-in');
    reports.push(await scan(page, 'sign-in'));
    await page.getByLabel('Email').fill(ADMIN);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    reports.push(await scan(page, 'sign-in: wrong password (error summary)'));
    check(reports);
  });

  it('endpoints list, endpoint page in each state, history page, not found', async () => {
    const page = await browser.page({ as: ADMIN });
    const reports: ScanReport[] = [];
    reports.push(await scan(page, 'endpoints list'));
    await page.goto('/endpoints?q=no-such-endpoint');
    await page.getByText('No endpoints match').waitFor();
    reports.push(await scan(page, 'endpoints list: nothing matches'));
    const { hold, preActive, active, suspended } = SCENARIO.states;
    for (const [name, status] of [
      [hold, 'Hold'],
      [preActive, 'Pre-Active'],
      [active, 'Active'],
      [suspended, 'Suspended'],
    ]) {
      await openEndpoint(page, name);
      await waitForStatus(page, status);
      reports.push(await scan(page, `endpoint page: ${status}`));
    }
    await page.goto('/events');
    reports.push(await scan(page, 'history (events) page'));
    await page.goto('/endpoints/999999999');
    reports.push(await scan(page, 'not found page'));
    check(reports);
  });

  it('Link SIM: picker open, searched, empty, error; confirmation; success message', async () => {
    const page = await browser.page({ as: ADMIN });
    const reports: ScanReport[] = [];
    await openEndpoint(page, SCENARIO.axeHold.endpoint);
    await page.getByRole('link', { name: 'Link SIM' }).click();
    const picker = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await picker.getByRole('radio').first().waitFor();
    reports.push(await scan(page, 'picker open (dialog)'));

    await picker.getByRole('link', { name: 'Next' }).click();
    await htmxSettled(page);
    await picker.getByRole('link', { name: 'Previous' }).waitFor();
    reports.push(await scan(page, 'picker: second page'));

    await searchPicker(page, picker, '8999', '0 SIMs match');
    await picker.getByText('No Ready to Activate SIM has an ICCID, IMSI or EID starting with').waitFor();
    reports.push(await scan(page, 'picker: no SIM matches'));

    await searchPicker(page, picker, '89441', 'SIMs match');
    await picker.getByRole('button', { name: 'Attach SIM' }).click();
    await page.getByRole('dialog').getByRole('heading', { name: 'There is a problem' }).waitFor();
    reports.push(await scan(page, 'picker: no SIM chosen (error summary in the dialog)'));

    await page.getByRole('dialog').getByRole('radio').first().check();
    await page.getByRole('dialog').getByRole('button', { name: 'Attach SIM' }).click();
    const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.waitFor();
    reports.push(await scan(page, 'confirmation (dialog)'));
    await confirmation.getByRole('button', { name: 'No' }).click();
    await confirmation.waitFor({ state: 'hidden' });

    // A link on another Hold endpoint, for the success message (and the Pre-Active page with it).
    const linked = SCENARIO.axeLinked;
    await openEndpoint(page, linked.endpoint);
    await page.getByRole('link', { name: 'Link SIM' }).click();
    await searchPicker(page, picker, linked.sim.prefix, '1 SIM matches');
    await picker.getByRole('radio', { name: `Select SIM ${linked.sim.iccid}` }).check();
    await picker.getByRole('button', { name: 'Attach SIM' }).click();
    await confirmation.getByRole('button', { name: 'Yes' }).click();
    await messages(page).getByText(`SIM ${linked.sim.iccid} linked successfully`).waitFor();
    reports.push(await scan(page, 'success message'));

    for (const label of ['Activate', 'De-link']) {
      await page.getByRole('button', { name: label, exact: true }).click();
      await confirmation.waitFor();
      reports.push(await scan(page, `confirmation: ${label} (dialog)`));
      await confirmation.getByRole('button', { name: 'No' }).click();
      await confirmation.waitFor({ state: 'hidden' });
    }
    check(reports);
  });

  it('Create endpoint: form, picker, error summary', async () => {
    const page = await browser.page({ as: ADMIN, path: '/endpoints/new' });
    const reports: ScanReport[] = [];
    reports.push(await scan(page, 'create endpoint'));
    await page.getByRole('button', { name: 'Choose a SIM' }).click();
    await page.getByRole('dialog', { name: 'Select SIM to attach' }).getByRole('radio').first().waitFor();
    reports.push(await scan(page, 'create endpoint: picker (dialog)'));
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    await page.getByRole('textbox', { name: 'IMEI (optional)' }).fill('12345');
    await page.getByRole('textbox', { name: 'SIM to link now (optional): ICCID' }).fill('8944');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    reports.push(await scan(page, 'create endpoint: error summary (name, IMEI, ICCID)'));
    check(reports);
  });

  // axe needs timers, which do not run with JavaScript off: the same full pages are scanned by loading their
  // URLs directly (no htmx request, so the server answers the whole page, as it does without JavaScript).
  it('full pages (as without JavaScript): picker and confirmation', async () => {
    const page = await browser.page({ as: ADMIN });
    const reports: ScanReport[] = [];
    await openEndpoint(page, SCENARIO.axeHold.endpoint);
    await page.goto((await page.getByRole('link', { name: 'Link SIM' }).getAttribute('href'))!);
    await page.getByRole('heading', { level: 1, name: 'Select SIM to attach' }).waitFor();
    expect(await page.getByRole('dialog').count()).toBe(0);
    reports.push(await scan(page, 'picker page'));
    const simId = await page.getByRole('radio').first().getAttribute('value');
    await page.goto(`${new URL(page.url()).pathname.replace(/\/new$/, '/confirm')}?sim_id=${simId}`);
    await page.getByRole('heading', { level: 1, name: 'Are you sure you want to continue?' }).waitFor();
    reports.push(await scan(page, 'confirmation page'));
    check(reports);
  });

  it('SIMs: inventory, filtered, import, import refused with a report', async () => {
    const page = await browser.page({ as: ADMIN, path: '/sims' });
    const reports: ScanReport[] = [await scan(page, 'SIMs page')];
    await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Active' });
    await page.getByRole('button', { name: 'Search' }).click();
    await htmxSettled(page);
    reports.push(await scan(page, 'SIMs page: filtered to Active'));
    await page.getByRole('link', { name: 'Import SIMs' }).click();
    await page.getByRole('heading', { level: 1, name: 'Import SIMs' }).waitFor();
    reports.push(await scan(page, 'Import SIMs'));
    await page.getByLabel('CSV file').setInputFiles({
      name: 'bad.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('iccid,imsi,eid,msisdn\n8944100000000000018,234151000000001,,\n12345,999,,\n'),
    });
    await page.getByRole('button', { name: 'Import SIMs' }).click();
    await page.getByRole('heading', { name: 'Problems in bad.csv' }).waitFor();
    reports.push(await scan(page, 'Import SIMs: refused, with the report of bad lines'));
    check(reports);
  });

  it('viewer: endpoints list and endpoint page', async () => {
    const page = await browser.page();
    await signIn(page, VIEWER);
    const reports: ScanReport[] = [await scan(page, 'viewer: endpoints list')];
    await openEndpoint(page, SCENARIO.states.active);
    reports.push(await scan(page, 'viewer: endpoint page'));
    check(reports);
  });
});
