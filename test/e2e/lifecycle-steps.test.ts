// Activate, Suspend and Resume, each through its confirmation ("Are you sure you want to continue?", Yes/No):
// Pre-Active → Active → Suspended → Active, with the success message each time; No changes nothing.
import { describe, expect, it } from 'vitest';
import { details, isFocused, messages, openEndpoint, waitForStatus } from './support/browser.js';
import { ADMIN, SCENARIO } from './support/fixtures.js';
import { useBrowser } from './support/suite.js';

const STEPS = [
  { button: 'Activate', verb: 'activated', from: 'Pre-Active', to: 'Active', summary: 'Activate endpoint' },
  { button: 'Suspend', verb: 'suspended', from: 'Active', to: 'Suspended', summary: 'Suspend endpoint' },
  { button: 'Resume', verb: 'resumed', from: 'Suspended', to: 'Active', summary: 'Resume endpoint' },
] as const;

const ACTION_BUTTONS = ['Link SIM', 'De-link', 'Activate', 'Suspend', 'Resume'];

describe('Activate, Suspend, Resume', () => {
  const browser = useBrowser();

  it('walks a Pre-Active endpoint through Activate → Suspend → Resume', async () => {
    const name = SCENARIO.steps.endpoint;
    const page = await browser.page({ as: ADMIN });
    await openEndpoint(page, name);
    const iccid = (await details(page)).ICCID;
    expect(iccid).toMatch(/^89\d{17,18}$/);

    for (const step of STEPS) {
      await waitForStatus(page, step.from);
      // Only the buttons the state allows (De-link is always there while a SIM is linked).
      const shown = [];
      for (const label of ACTION_BUTTONS) if ((await page.getByRole('button', { name: label, exact: true }).count()) > 0) shown.push(label);
      expect(shown.sort()).toEqual(['De-link', step.button].sort());

      await page.getByRole('button', { name: step.button, exact: true }).click();
      const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
      await confirmation.waitFor();
      expect(await confirmation.innerText()).toContain(`${step.summary} '${name}' and its SIM ${iccid}.`);
      await confirmation.getByRole('button', { name: 'Yes' }).click();
      await messages(page).getByText(`Endpoint '${name}' ${step.verb} successfully`).waitFor();
      await waitForStatus(page, step.to);
      expect(await details(page)).toMatchObject({ 'SIM status': step.to, ICCID: iccid });
    }

    // The history lists the three steps, newest first.
    const history = page.getByRole('table', { name: `History of ${name}, newest first` });
    const rows = await history.getByRole('row').allInnerTexts();
    expect(rows[1], rows.join('\n')).toContain('Suspended → Active');
    expect(rows[2]).toContain('Active → Suspended');
    expect(rows[3]).toContain('Pre-Active → Active');
  });

  it('No closes the confirmation, changes nothing and returns focus to the button', async () => {
    const name = SCENARIO.steps.declined;
    const page = await browser.page({ as: ADMIN });
    await openEndpoint(page, name);
    await waitForStatus(page, 'Pre-Active');
    const activate = page.getByRole('button', { name: 'Activate', exact: true });
    await activate.click();
    const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.waitFor();
    await confirmation.getByRole('button', { name: 'No' }).click();
    await confirmation.waitFor({ state: 'hidden' });
    expect(await isFocused(activate)).toBe(true);
    await page.reload();
    await waitForStatus(page, 'Pre-Active');
    expect(await page.getByText(/successfully/).count()).toBe(0);
  });
});
