// `npm run screenshots`: regenerates docs/screenshots/*.png — the main states of SIM Link, taken in Debian's
// Chromium from the built app on a fresh demo database (the same helpers as the browser tests). Run it after
// a change to the screens and commit the PNGs with it. Set E2E_SKIP_BUILD=1 to reuse an up-to-date dist/.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createLaunchToken } from '../src/domain/launch.js';
import { buildOnce, freePort, rootDir, startApp } from '../test/e2e/support/app-server.js';
import { startCrmHost } from '../test/e2e/support/crm-host.js';
import { htmxSettled, launchBrowser, messages, newContext, openEndpoint, searchPicker, signIn } from '../test/e2e/support/browser.js';
import { ADMIN, demoSim } from '../test/e2e/support/fixtures.js';

const outDir = join(rootDir, 'docs', 'screenshots');
// bypassCSP: Playwright hides the caret with an injected <style>, which the app's CSP would refuse.
const SHOT = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, bypassCSP: true };

async function shoot(page: Page, name: string, what: string): Promise<void> {
  // Nothing blinking or half-drawn: no caret, settled requests, fonts loaded.
  await htmxSettled(page, 100);
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: join(outDir, `${name}.png`), caret: 'hide', animations: 'disabled' });
  console.log(`  docs/screenshots/${name}.png  ${what}`);
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  console.log('Building and starting SIM Link on a fresh demo database…');
  buildOnce();
  // A stand-in CRM on another origin, allowed to frame the app.
  const crmPort = await freePort();
  const crmOrigin = `http://127.0.0.1:${crmPort}`;
  const secret = randomBytes(32).toString('base64url');
  const crm = await startCrmHost([crmPort]);
  const app = await startApp({ env: { CRM_ORIGINS: crmOrigin, CRM_LAUNCH_SECRET: secret } });
  const browser = await launchBrowser();
  try {
    const { context, problems } = await newContext(browser, app.url, SHOT);
    const page = await context.newPage();
    await page.goto('/sign-in');
    await shoot(page, 'sign-in', 'Sign in');
    await signIn(page, ADMIN);
    await shoot(page, 'endpoints', 'the endpoints list');

    const endpoint = 'Trailer 01';
    const sim = demoSim(21);
    await openEndpoint(page, endpoint);
    await shoot(page, 'endpoint-hold', 'an endpoint on Hold');
    await page.getByRole('link', { name: 'Link SIM' }).click();
    const picker = page.getByRole('dialog', { name: 'Select SIM to attach' });
    await picker.getByRole('radio').first().waitFor();
    await shoot(page, 'picker', 'Link SIM: the picker in its dialog');
    await searchPicker(page, picker, sim.prefix, '1 SIM matches');
    await picker.getByRole('radio', { name: `Select SIM ${sim.iccid}` }).check();
    await page.mouse.move(0, 0);
    await shoot(page, 'picker-search', 'the picker searched by an ICCID prefix, a SIM chosen');
    await picker.getByRole('button', { name: 'Attach SIM' }).click();
    const confirmation = page.getByRole('dialog', { name: 'Are you sure you want to continue?' });
    await confirmation.waitFor();
    await shoot(page, 'confirm-link', 'the confirmation');
    await confirmation.getByRole('button', { name: 'Yes' }).click();
    await messages(page).getByText('linked successfully').waitFor();
    await shoot(page, 'linked', 'the success message; the endpoint Pre-Active with its SIM');

    await openEndpoint(page, 'Forklift 21');
    await shoot(page, 'endpoint-active', 'an Active endpoint: Suspend, De-link, its history');

    await page.goto('/endpoints/new');
    await page.getByRole('textbox', { name: 'Name' }).fill('Reefer 7');
    await page.getByRole('textbox', { name: 'IMEI (optional)' }).fill('12345');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await shoot(page, 'create-endpoint-error', 'Create endpoint: the error summary');

    await page.goto('/events');
    await shoot(page, 'history', 'the enterprise-wide history');

    await page.goto('/sims');
    await shoot(page, 'sims', 'the SIM inventory');

    // Without JavaScript the picker is a page of its own.
    const noJs = await newContext(browser, app.url, { ...SHOT, javaScriptEnabled: false });
    const plain = await noJs.context.newPage();
    await signIn(plain, ADMIN);
    await openEndpoint(plain, 'Cold box 02');
    await plain.getByRole('link', { name: 'Link SIM' }).click();
    await plain.getByRole('heading', { level: 1, name: 'Select SIM to attach' }).waitFor();
    await plain.screenshot({ path: join(outDir, 'picker-no-javascript.png'), caret: 'hide' });
    console.log('  docs/screenshots/picker-no-javascript.png  the picker as a page, JavaScript off');

    // Inside a CRM: the CRM page frames /launch?token=…, which lands on an endpoint; Link SIM in the frame.
    const embedded = await newContext(browser, app.url, SHOT);
    const host = await embedded.context.newPage();
    const token = await createLaunchToken(secret, {
      ent: 'acme',
      sub: 'crm.agent@acme.example',
      name: 'Cora CRM',
      role: 'admin',
      target: '/endpoints?q=Truck%2006',
      ttlSeconds: 60,
    });
    await host.goto(`${crmOrigin}/crm?src=${encodeURIComponent(`${app.url}/launch?token=${token}`)}`);
    const frame = host.getByTitle('SIM Link').contentFrame();
    await frame.getByRole('link', { name: 'Truck 06', exact: true }).click();
    await frame.getByRole('link', { name: 'Link SIM' }).click();
    await frame.getByRole('dialog', { name: 'Select SIM to attach' }).getByRole('radio').first().waitFor();
    await shoot(host, 'embedded', 'SIM Link inside a CRM page (another origin), the picker open');

    const errors = [...problems(), ...noJs.problems(), ...embedded.problems()];
    if (errors.length) throw new Error(`the browser reported errors:\n${errors.join('\n')}`);
  } finally {
    await browser.close();
    await app.stop();
    await crm.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
