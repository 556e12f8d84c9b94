// npm run check-invariants — lists every row breaking an invariant of docs/invariants.md; exits 1 if there is any.
import { loadConfig } from '../config.js';
import { openDatabase } from './database.js';
import { findViolations } from '../domain/invariants.js';

const config = loadConfig();
const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
try {
  const violations = await findViolations(db.orm.em.fork());
  if (violations.length === 0) {
    console.log('All invariants hold.');
  } else {
    console.table(violations);
    process.exitCode = 1;
  }
} finally {
  await db.close();
}
