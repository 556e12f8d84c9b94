// Embedded in a CRM: a page on another origin (http://127.0.0.1:<port>, listed in CRM_ORIGINS) frames
// /launch?token=… (signed by `npm run launch-url`, as the README tells a CRM developer). The launch starts a
// session whose cookie is SameSite=None; Secure; Partitioned, the whole link flow runs inside the frame, and
// the CRM page receives the sim.linked message. A page on an origin not in CRM_ORIGINS cannot frame the
// app: the browser refuses it (CSP frame-ancestors).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import type { Page } from 'playwright-core';
import { searchPicker } from './support/browser.js';
import { rootDir } from './support/app-server.js';
import { assertAccessible } from './support/axe.js';
import { SCENARIO } from './support/fixtures.js';
import { baseURL, useBrowser } from './support/suite.js';

const crmOrigin = inject('crmOrigin');
const foreignOrigin = inject('foreignOrigin');

/** A launch URL from the documented script, signed with the secret the app was started with. */
async function launchUrl(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'launch-url', '--', ...args, '--base', baseURL], {
    cwd: rootDir,
    env: { ...process.env, CRM_LAUNCH_SECRET: inject('crmLaunchSecret') },
  });
  const url = stdout.trim().split('\n').pop()!;
  expect(url).toMatch(/\/launch\?token=/);
  return url;
}

interface Received {
  origin: string;
  data: { type: string; endpointId?: number; iccid?: string; height?: number };
}

const received = (page: Page) => page.evaluate(() => (window as unknown as { received: Received[] }).received);

describe('embedded in a CRM', () => {
  const browser = useBrowser();

  it('launches in the CRM’s iframe, links a SIM inside it, and the CRM hears sim.linked', async () => {
    const { endpoint, sim } = SCENARIO.embedded;
    const launch = await launchUrl([
      '--ent',
      'acme',
      '--sub',
      'crm.agent@acme.example',
      '--name',
      'Cora CRM',
      '--role',
      'admin',
      '--target',
      `/endpoints?q=${encodeURIComponent(endpoint)}`,
    ]);
    const crm = await browser.page();
    await crm.goto(`${crmOrigin}/crm?src=${encodeURIComponent(launch)}`);
    const frame = crm.getByTitle('SIM Link').contentFrame();

    // The launch redirected (303) to the target: the token has left the frame's address.
    await frame.getByRole('heading', { level: 1, name: 'Endpoints' }).waitFor();
    const appFrame = crm.frames().find((f) => f.url().startsWith(baseURL))!;
    expect(new URL(appFrame.url()).pathname).toBe('/endpoints');
    expect(appFrame.url()).not.toContain('token=');
    expect(await frame.getByRole('banner').innerText()).toContain('Cora CRM');

    // The session cookie is the embedded kind, partitioned under the CRM's site.
    const cookies = await crm.context().cookies(baseURL);
    const session = cookies.find((cookie) => cookie.name === 'simlink_session');
    expect(session, JSON.stringify(cookies)).toMatchObject({ sameSite: 'None', secure: true, httpOnly: true });
    expect((session as { partitionKey?: string }).partitionKey).toBe('http://127.0.0.1');

    // The link flow, inside the frame.
    await frame.getByRole('link', { name: endpoint, exact: true }).click();
    await frame.getByRole('heading', { level: 1, name: endpoint }).waitFor();
    await frame.getByRole('link', { name: 'Link SIM' }).click();
    const dialog = frame.getByRole('dialog', { name: 'Select SIM to attach' });
    await dialog.waitFor();
    await searchPicker(crm, dialog, sim.prefix, '1 SIM matches');
    await assertAccessible(appFrame, 'embedded: picker open in the frame');
    await dialog.getByRole('radio', { name: `Select SIM ${sim.iccid}` }).check();
    await dialog.getByRole('button', { name: 'Attach SIM' }).click();
    const confirmation = frame.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.getByRole('button', { name: 'Yes' }).click();
    await frame.getByRole('status').getByText(`SIM ${sim.iccid} linked successfully`).waitFor();

    // The CRM page got the change, from the app's origin, and the content height.
    await expect
      .poll(async () => (await received(crm)).find((message) => message.data.type === 'sim.linked'), { timeout: 10_000 })
      .toBeTruthy();
    const messages = await received(crm);
    const linked = messages.find((message) => message.data.type === 'sim.linked')!;
    expect(linked.origin).toBe(new URL(baseURL).origin);
    expect(linked.data).toMatchObject({ type: 'sim.linked', iccid: sim.iccid });
    expect(linked.data.endpointId).toEqual(expect.any(Number));
    expect(messages.some((message) => message.data.type === 'simlink.height' && (message.data.height ?? 0) > 100)).toBe(true);
  });

  it('a page on an origin not in CRM_ORIGINS cannot frame the app', async () => {
    const host = await browser.page({
      expectedErrors: /^Framing '.*' violates the following Content Security Policy directive: "frame-ancestors/,
    });
    const refusals: string[] = [];
    host.on('console', (message) => {
      if (/frame-ancestors/.test(message.text())) refusals.push(message.text());
    });
    const framed = host.waitForResponse((response) => response.url() === `${baseURL}/sign-in`);
    await host.goto(`${foreignOrigin}/crm?src=${encodeURIComponent(`${baseURL}/sign-in`)}`);
    const response = await framed;
    expect(response.headers()['content-security-policy']).toContain(`frame-ancestors 'self' ${crmOrigin}`);

    // The browser blocked it: the frame shows no part of the app, and says why in the console.
    await expect.poll(() => refusals.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(refusals[0]).toContain(
      `violates the following Content Security Policy directive: "frame-ancestors 'self' ${crmOrigin}". The request has been blocked.`,
    );
    const frame = host.getByTitle('SIM Link').contentFrame();
    expect(await frame.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
    expect(host.frames().some((f) => f.url().startsWith(baseURL))).toBe(false);
    expect(await received(host)).toEqual([]);
  });
});
