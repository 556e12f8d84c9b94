// npm run seed -- --enterprise acme --sims 1000000 --endpoints 100000 [--linked 85000]
// Adds bulk data to the database of DATABASE_URL, or to the embedded one in DATA_DIR (stop the app first:
// one SIM Link process owns a data directory at a time).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { openDatabase } from './database.js';
import { seedDemo } from './seed-demo.js';
import { seedBulk } from './seed-bulk.js';

const { values } = parseArgs({
  options: {
    enterprise: { type: 'string', default: 'acme' },
    sims: { type: 'string', default: '0' },
    endpoints: { type: 'string', default: '0' },
    linked: { type: 'string' },
  },
});

const count = (name: string, raw: string | undefined) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number; got "${raw}".`);
    process.exit(2);
  }
  return n;
};

const config = loadConfig();
const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
try {
  const em = db.orm.em.fork();
  if (config.seedDemo) await seedDemo(em);
  const result = await seedBulk(em, {
    enterprise: values.enterprise!,
    sims: count('sims', values.sims),
    endpoints: count('endpoints', values.endpoints),
    linked: values.linked === undefined ? undefined : count('linked', values.linked),
    log: (line) => console.log(line),
  });
  console.log(
    `Added ${result.sims.toLocaleString('en')} SIMs and ${result.endpoints.toLocaleString('en')} endpoints ` +
      `(${result.linked.toLocaleString('en')} linked) to "${values.enterprise}" in ${(result.ms / 1000).toFixed(1)} s.`,
  );
} finally {
  await db.close();
}
