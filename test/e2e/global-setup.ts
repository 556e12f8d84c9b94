// Once per `npm run test:e2e`: build the app, start it on a free port with a fresh database (PostgreSQL
// when TEST_DATABASE_URL is set, else the embedded PostgreSQL in a temporary directory), seeded with the demo data, rate
// limits off, webhooks to 127.0.0.1 allowed (the webhook tests' receivers listen there); start the stand-in
// CRM on two more origins (one allowed to frame the app, one not).
// Everything is stopped, and the database dropped, after the last test file; the server's log is left in
// test-results/e2e-server.log.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildOnce, freePort, rootDir, startApp } from './support/app-server.js';
import { startCrmHost } from './support/crm-host.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://localhost:<port> */
    baseURL: string;
    /** The CRM origin in CRM_ORIGINS: http://127.0.0.1:<port> */
    crmOrigin: string;
    /** Another origin, not in CRM_ORIGINS. */
    foreignOrigin: string;
    crmLaunchSecret: string;
  }
}

export default async function setup(project: TestProject) {
  const started = Date.now();
  buildOnce();
  const [crmPort, foreignPort] = [await freePort(), await freePort()];
  const crmOrigin = `http://127.0.0.1:${crmPort}`;
  const foreignOrigin = `http://127.0.0.1:${foreignPort}`;
  const crmLaunchSecret = randomBytes(32).toString('base64url');
  const crm = await startCrmHost([crmPort, foreignPort]);
  const app = await startApp({ env: { CRM_ORIGINS: crmOrigin, CRM_LAUNCH_SECRET: crmLaunchSecret, WEBHOOK_ALLOW_PRIVATE: 'true' } });
  console.log(`SIM Link at ${app.url} on the ${app.database} (build and start: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  project.provide('baseURL', app.url);
  project.provide('crmOrigin', crmOrigin);
  project.provide('foreignOrigin', foreignOrigin);
  project.provide('crmLaunchSecret', crmLaunchSecret);
  return async () => {
    await crm.close();
    await app.stop();
    // The server's log (warnings and errors; LOG_LEVEL=info for more) for a failure's diagnosis.
    mkdirSync(join(rootDir, 'test-results'), { recursive: true });
    writeFileSync(join(rootDir, 'test-results', 'e2e-server.log'), app.output());
  };
}
