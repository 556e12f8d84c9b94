// Two people pick the same SIM for two endpoints at the same time (two browser contexts, each with its own
// session). Both reach the confirmation; the first Yes links it; the second Yes is told, in words, that the
// SIM was just taken — on the picker, refreshed without that SIM — and its endpoint stays on Hold.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { details, messages, openEndpoint, searchPicker, waitForStatus } from './support/browser.js';
import { assertAccessible } from './support/axe.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

const CONFLICT = 'This SIM was just linked to another endpoint. Choose another SIM.';

describe('conflict', () => {
  const browser = useBrowser();
  const { first, second, sim } = SCENARIO.conflict;

  async function confirmSameSim(page: Page, endpoint: string) {
    await openEndpoint(page, endpoint);
    await page.getByRole('link', { name: 'Link SIM' }).click();
    const dialog = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await searchPicker(page, dialog, sim.prefix, '1 SIM matches');
    await dialog.getByRole('radio', { name: `Select SIM ${sim.iccid}` }).check();
    await dialog.getByRole('button', { name: 'Attach SIM' }).click();
    const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.waitFor();
    expect(await confirmation.innerText()).toContain(`Link SIM ${sim.iccid} to endpoint '${endpoint}'.`);
    return confirmation;
  }

  it('the second Yes for the same SIM shows the conflict message', async () => {
    const alice = await browser.page({ as: ADMIN });
    const bob = await browser.page({ as: ADMIN });
    const aliceConfirms = await confirmSameSim(alice, first);
    const bobConfirms = await confirmSameSim(bob, second);

    await aliceConfirms.getByRole('button', { name: 'Yes' }).click();
    await messages(alice).getByText(`SIM ${sim.iccid} linked successfully`).waitFor();

    const answer = bob.waitForResponse((response) => response.request().method() === 'POST');
    await bobConfirms.getByRole('button', { name: 'Yes' }).click();
    expect((await answer).status()).toBe(409);
    const problem = bob.getByRole('alert');
    await problem.getByRole('heading', { name: 'There is a problem' }).waitFor();
    expect(await problem.getByRole('link', { name: CONFLICT }).count()).toBe(1);
    expect(await bob.title()).toMatch(/^Error: Select SIM to attach/);
    // The picker, refreshed: the taken SIM is not offered any more.
    await bob.getByRole('table', { name: 'Ready to Activate SIMs, in ICCID order' }).waitFor();
    expect(await bob.getByRole('radio', { name: `Select SIM ${sim.iccid}` }).count()).toBe(0);
    await assertAccessible(bob, 'conflict: the picker with the conflict message');

    // The first endpoint has the SIM; the second is still on Hold.
    expect((await details(alice)).ICCID).toBe(sim.iccid);
    await openEndpoint(bob, second);
    await waitForStatus(bob, 'Hold');
  });
});
