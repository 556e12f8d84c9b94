// A viewer reads everything of the enterprise and is offered no action: no Create endpoint, and on the
// endpoint page in every state no Link SIM, De-link, Activate, Suspend or Resume; no Import SIMs.
import { describe, expect, it } from 'vitest';
import { details, openEndpoint } from './support/browser.js';
import { SCENARIO, VIEWER } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

const ACTIONS = ['Link SIM', 'De-link', 'Activate', 'Suspend', 'Resume', 'Create endpoint', 'Import SIMs'];

describe('viewer', () => {
  const browser = useBrowser();

  it('sees no action buttons', async () => {
    const page = await browser.page({ as: VIEWER });
    const offered = async () => {
      const found: string[] = [];
      for (const name of ACTIONS) {
        const count =
          (await page.getByRole('button', { name, exact: true }).count()) + (await page.getByRole('link', { name, exact: true }).count());
        if (count) found.push(name);
      }
      return found;
    };

    expect(await page.getByRole('banner').innerText()).toContain('(viewer)');
    expect(await page.getByRole('table', { name: 'Endpoints' }).getByRole('row').count()).toBeGreaterThan(1);
    expect(await offered()).toEqual([]);

    const { hold, preActive, active, suspended } = SCENARIO.states;
    for (const [name, status] of [
      [hold, 'Hold'],
      [preActive, 'Pre-Active'],
      [active, 'Active'],
      [suspended, 'Suspended'],
    ]) {
      await openEndpoint(page, name);
      expect((await details(page)).Status).toBe(status);
      expect(await offered(), `actions offered on ${name} (${status})`).toEqual([]);
      expect(
        (await page.getByRole('table', { name: `History of ${name}, newest first` }).count()) +
          (await page.getByText('Nothing has happened to this endpoint yet.').count()),
      ).toBe(1);
    }

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'SIMs' }).click();
    await page.getByRole('heading', { level: 1, name: 'SIMs' }).waitFor();
    expect(await page.getByRole('table', { name: 'SIMs' }).getByRole('row').count()).toBeGreaterThan(1);
    expect(await offered()).toEqual([]);
  });
});
