// Prints a new API token for scripts (SPEC §5), created in the name of the enterprise's first admin:
//   npm run api-token -- --ent acme --name "CRM" --role admin
// On the database of DATABASE_URL, or the embedded one in DATA_DIR (stop SIM Link first: one process per
// data directory). The token is printed once and stored only as its hash; revoke it on /settings/api-tokens.
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { createApiTokenForEnterprise } from '../src/domain/api-tokens.js';
import { DomainError, ValidationError } from '../src/domain/errors.js';

function fail(message: string): never {
  console.error(`api-token: ${message}`);
  console.error('usage: npm run api-token -- --ent SLUG --name NAME --role admin|viewer');
  process.exit(2);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({
    options: { ent: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}
const { ent, name, role } = values;
if (!ent || !name || !role) fail('--ent, --name and --role are required');

const config = loadConfig();
const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
try {
  const { token } = await createApiTokenForEnterprise(db.orm.em.fork(), ent, { name, role });
  console.log(token);
} catch (error) {
  if (error instanceof ValidationError) fail(error.errors.map((e) => e.message).join('; '));
  if (error instanceof DomainError) fail(error.message === 'The enterprise was not found.' ? `no enterprise "${ent}"` : error.message);
  throw error;
} finally {
  await db.close();
}
