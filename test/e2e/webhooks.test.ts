// Webhooks by keyboard only (issue 16, SPEC.md §6): open the page from the header, Add webhook (URL, event
// types as checkboxes), the signing secret shown once, the list with the webhook's state; on its page Send
// test event to a real receiver on 127.0.0.1 (which refuses the first try), the delivery log with both
// attempts, Resend (the same webhook-id again), Disable and Enable, and Delete through the confirmation —
// focus visible at every step, axe on each state.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertAccessible } from './support/axe.js';
import { details, htmxSettled, isFocused, messages } from './support/browser.js';
import { ADMIN } from './support/fixtures.js';
import { checkFocus, press, tabTo } from './support/keyboard.js';
import { useBrowser } from './support/suite.js';

interface Receipt {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 that answers the first message 500 ("not yet"), every later one 200 ("ok"). */
function receiver() {
  const receipts: Receipt[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      receipts.push({ id: String(req.headers['webhook-id']), headers: req.headers, body });
      res.statusCode = receipts.length === 1 ? 500 : 200;
      res.end(receipts.length === 1 ? 'not yet' : 'ok');
    });
  });
  return {
    receipts,
    listen: () => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)),
    url: () => `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/sim-link`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits until the receiver has had `count` messages (the worker polls every 0.5 s; the first retry is ~5 s after). */
async function received(target: ReturnType<typeof receiver>, count: number) {
  const deadline = Date.now() + 20_000;
  while (target.receipts.length < count) {
    if (Date.now() > deadline) throw new Error(`the receiver got ${target.receipts.length} messages, not ${count}, within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The delivery log's rows (newest first) as the cells' text, once it has `count` of them (reloading the page until then). */
async function deliveryLog(page: Page, count: number): Promise<string[][]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const table = page.getByRole('table', { name: /attempts?, newest first/ });
    const rows = (await table.count()) ? await table.locator('tbody tr').all() : [];
    if (rows.length === count) return Promise.all(rows.map((row) => row.getByRole('cell').allInnerTexts()));
    if (Date.now() > deadline) throw new Error(`the delivery log has ${rows.length} attempts, not ${count}`);
    await page.waitForTimeout(200);
    await page.reload();
  }
}

describe('Webhooks', () => {
  const browser = useBrowser();
  const target = receiver();
  beforeAll(() => target.listen());
  afterAll(() => target.close());

  it('adds a webhook, sends a test event, reads the log, resends, disables, enables and deletes it, by keyboard', async () => {
    const page = await browser.page({ as: ADMIN });
    const header = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' });
    await tabTo(page, header);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await assertAccessible(page, 'Webhooks');

    // Add webhook: the URL, and every event type but the two of imports and bulk changes (Space unticks them).
    const url = target.url();
    await tabTo(page, page.getByRole('textbox', { name: 'URL' }));
    await page.keyboard.type(url);
    for (const type of ['sims.imported', 'bulk.completed']) {
      const box = page.getByRole('checkbox', { name: new RegExp(`\\(${type.replace('.', '\\.')}\\)`) });
      await tabTo(page, box);
      expect(await box.isChecked()).toBe(true);
      await press(page, 'Space');
      expect(await box.isChecked()).toBe(false);
    }
    await tabTo(page, page.getByRole('button', { name: 'Add webhook' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: `Signing secret of the webhook to ${url}` }).waitFor();
    expect(await page.getByText('Copy it now: it will not be shown again.').count()).toBe(1);
    const secret = await page.getByRole('textbox', { name: 'Signing secret' }).inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await tabTo(page, page.getByRole('textbox', { name: 'Signing secret' }));
    await assertAccessible(page, 'Webhooks: the new webhook’s secret');

    // The list with its state; the secret is not on the page once it is opened again.
    const row = page.getByRole('row').filter({ hasText: url });
    expect(await row.getByRole('cell').allInnerTexts()).toEqual([
      url,
      'endpoint.created, sim.linked, sim.delinked, endpoint.activated, endpoint.suspended, endpoint.resumed, sim.swapped',
      'Enabled',
      expect.any(String),
    ]);
    await page.goto('/settings/webhooks');
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    expect(await page.content()).not.toContain(secret);

    // Its page: the state, nothing sent yet.
    await tabTo(page, page.getByRole('link', { name: url, exact: true }), { max: 80 });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: `Webhook to ${url}` }).waitFor();
    expect(await details(page)).toMatchObject({
      State: 'Enabled',
      'Event types': 'Endpoint created, SIM linked, SIM de-linked, Activated, Suspended, Resumed, SIM swapped',
    });
    await page.getByText('Nothing has been sent to this webhook yet.').waitFor();
    await assertAccessible(page, 'Webhook: nothing sent yet');

    // Send test event: the receiver refuses it (500), the worker tries again and it is delivered (200).
    await tabTo(page, page.getByRole('button', { name: 'Send test event' }));
    await page.keyboard.press('Enter');
    await messages(page).getByText('Test event queued: it appears in the delivery log below once it has been sent').waitFor();
    await assertAccessible(page, 'Webhook: test event queued');
    await received(target, 1);
    let log = await deliveryLog(page, 1);
    expect(log[0].slice(1, 3)).toEqual([expect.stringMatching(/^webhook\.test msg_/), 'HTTP 500']);
    expect(log[0][4]).toBe('not yet');
    expect((await details(page)).State).toMatch(/^Enabled, failing since /);
    await assertAccessible(page, 'Webhook: the first attempt failed');
    await received(target, 2);
    log = await deliveryLog(page, 2);
    expect(log.map((cells) => [cells[2], cells[4]])).toEqual([
      ['HTTP 200', 'ok'],
      ['HTTP 500', 'not yet'],
    ]);
    expect((await details(page)).State).toBe('Enabled');
    const messageId = target.receipts[0].id;
    expect(target.receipts[1].id).toBe(messageId);
    const event = new Webhook(secret).verify(target.receipts[1].body, target.receipts[1].headers as Record<string, string>);
    expect(event).toMatchObject({ type: 'webhook.test', data: { source: 'ui' } });
    await assertAccessible(page, 'Webhook: the delivery log, retried and delivered');

    // Resend: a new attempt with the same webhook-id.
    const resend = page.getByRole('button', { name: `Resend message ${messageId}` }).first();
    await tabTo(page, resend, { max: 80 });
    await page.keyboard.press('Enter');
    await messages(page).getByText('Message queued to be sent again (with the same webhook-id)').waitFor();
    await received(target, 3);
    expect(target.receipts[2].id).toBe(messageId);
    log = await deliveryLog(page, 3);
    expect(log.map((cells) => cells[2])).toEqual(['HTTP 200', 'HTTP 200', 'HTTP 500']);
    await assertAccessible(page, 'Webhook: resent');

    // Disable, with the reason on the page and in the list; then Enable.
    await tabTo(page, page.getByRole('button', { name: 'Disable' }));
    await page.keyboard.press('Enter');
    await messages(page).getByText('Webhook disabled: nothing is sent to it until it is enabled again').waitFor();
    expect(await details(page)).toMatchObject({ State: 'Disabled', Why: 'Disabled by an admin' });
    await assertAccessible(page, 'Webhook: disabled');
    await tabTo(page, page.getByRole('link', { name: 'Back to webhooks' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    expect(await page.getByRole('row').filter({ hasText: url }).getByRole('cell').nth(2).innerText()).toBe('Disabled by an admin');
    await tabTo(page, page.getByRole('link', { name: url, exact: true }), { max: 80 });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: `Webhook to ${url}` }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Enable' }));
    await page.keyboard.press('Enter');
    await messages(page).getByText('Webhook enabled').waitFor();
    expect((await details(page)).State).toBe('Enabled');
    expect(Object.keys(await details(page))).not.toContain('Why');
    await assertAccessible(page, 'Webhook: enabled again');

    // Delete → "Are you sure you want to continue?" → Yes.
    await tabTo(page, page.getByRole('link', { name: 'Delete' }));
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await dialog.waitFor();
    await htmxSettled(page);
    await dialog.getByText(`Delete the webhook to ${url}.`).waitFor();
    await assertAccessible(page, 'Webhook: delete confirmation');
    const yes = dialog.getByRole('button', { name: 'Yes' });
    await tabTo(page, yes);
    expect(await isFocused(yes)).toBe(true);
    await checkFocus(page, []);
    await page.keyboard.press('Enter');
    await messages(page).getByText(`Webhook to ${url} deleted`).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    expect(await page.getByRole('row').filter({ hasText: url }).count()).toBe(0);
    await assertAccessible(page, 'Webhooks: deleted');
    expect(target.receipts).toHaveLength(3);
  });
});
