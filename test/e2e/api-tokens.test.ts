// API tokens by keyboard only: open the page from the header, create a token (Name, Role), see it once with
// its Copy button and the warning, find it gone from the page on reload, revoke it through the confirmation
// dialog — focus visible at every step, axe on each state.
import { describe, expect, it } from 'vitest';
import { htmxSettled, isFocused, messages } from './support/browser.js';
import { ADMIN } from './support/fixtures.js';
import { assertAccessible } from './support/axe.js';
import { checkFocus, tabTo } from './support/keyboard.js';
import { useBrowser } from './support/suite.js';

describe('API tokens', () => {
  const browser = useBrowser();

  it('creates a token shown once and revokes it, by keyboard', async () => {
    const page = await browser.page({ as: ADMIN });
    const header = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' });
    await tabTo(page, header);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
    await assertAccessible(page, 'API tokens');

    const name = `E2E token ${Date.now()}`;
    await tabTo(page, page.getByRole('textbox', { name: 'Name' }));
    await page.keyboard.type(name);
    await tabTo(page, page.getByRole('radio', { name: /^Viewer/ }));
    await page.keyboard.press('ArrowUp');
    expect(await page.getByRole('radio', { name: /^Admin/ }).isChecked()).toBe(true);
    await tabTo(page, page.getByRole('button', { name: 'Create token' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: `Your new token '${name}'` }).waitFor();
    expect(await page.getByText('it will not be shown again').count()).toBe(1);
    const token = await page.getByRole('textbox', { name: 'New API token' }).inputValue();
    expect(token).toMatch(/^sl_[A-Za-z0-9_-]{43}$/);
    const copy = page.getByRole('button', { name: 'Copy token' });
    expect(await copy.isVisible()).toBe(true);
    await assertAccessible(page, 'API tokens: a new token');

    // Shown once: the list has it, the page (opened again) no longer shows the token.
    await page.goto('/settings/api-tokens');
    await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
    expect(await page.content()).not.toContain(token);
    const row = page.getByRole('row').filter({ hasText: name });
    expect(await row.getByRole('cell').nth(1).innerText()).toBe('admin');
    expect(await row.getByRole('cell').nth(4).innerText()).toBe('Never');

    // Revoke → "Are you sure you want to continue?" → Yes.
    const revoke = row.getByRole('link', { name: `Revoke token ${name}` });
    await tabTo(page, revoke, { max: 80 });
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await dialog.waitFor();
    await htmxSettled(page);
    await assertAccessible(page, 'API tokens: revoke confirmation');
    const yes = dialog.getByRole('button', { name: 'Yes' });
    await tabTo(page, yes);
    expect(await isFocused(yes)).toBe(true);
    await checkFocus(page, []);
    await page.keyboard.press('Enter');
    await messages(page).getByText(`API token '${name}' revoked`).waitFor();
    expect(await page.getByRole('row').filter({ hasText: name }).count()).toBe(0);
  });

  it('the API reference at /api/docs loads under its CSP', async () => {
    // Swagger UI's script tries one inline style, which the CSP refuses (no 'unsafe-inline'); the page works without it.
    const page = await browser.page({ expectedErrors: /Applying inline style violates the following Content Security Policy directive/ });
    await page.goto('/api/docs');
    await page
      .getByRole('heading', { name: /SIM Link API/ })
      .first()
      .waitFor();
    await page.getByText('/api/v1/endpoints/{id}/sim').first().waitFor();
  });
});
