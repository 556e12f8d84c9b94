// Prints a CRM launch URL for SIM Link, signed as a CRM would sign it (HS256 with CRM_LAUNCH_SECRET).
//   CRM_LAUNCH_SECRET=… npm run launch-url -- --ent acme --sub admin@acme.example --role admin \
//     [--name "Ada Admin"] [--target /endpoints/1] [--base http://127.0.0.1:3000] [--ttl 120]
// The URL works once, for --ttl seconds (at most 300).
import { parseArgs } from 'node:util';
import { createLaunchToken, LAUNCH_MAX_LIFETIME_SECONDS } from '../src/domain/launch.js';

function fail(message: string): never {
  console.error(`launch-url: ${message}`);
  console.error(
    'usage: npm run launch-url -- --ent SLUG --sub EMAIL --role admin|viewer [--name NAME] [--target /path] [--base URL] [--ttl SECONDS]',
  );
  process.exit(2);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      ent: { type: 'string' },
      sub: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      target: { type: 'string' },
      base: { type: 'string' },
      ttl: { type: 'string' },
    },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}

const secret = process.env.CRM_LAUNCH_SECRET?.trim();
if (!secret) fail('set CRM_LAUNCH_SECRET (the same value SIM Link runs with)');
if (secret.length < 32) fail('CRM_LAUNCH_SECRET must be at least 32 characters long');
const { ent, sub, role, name, target } = values;
if (!ent || !sub || !role) fail('--ent, --sub and --role are required');
if (role !== 'admin' && role !== 'viewer') fail('--role must be admin or viewer');
const ttl = Number(values.ttl ?? 120);
if (!Number.isInteger(ttl) || ttl < 1 || ttl > LAUNCH_MAX_LIFETIME_SECONDS)
  fail(`--ttl must be 1 to ${LAUNCH_MAX_LIFETIME_SECONDS} seconds`);
const base = values.base ?? process.env.PUBLIC_URL ?? `http://127.0.0.1:${process.env.PORT || 3000}`;

const token = await createLaunchToken(secret, { ent, sub, role, name, target, ttlSeconds: ttl });
const url = new URL('/launch', base);
url.searchParams.set('token', token);
console.log(url.toString());
