// `npm start` builds when dist/ is missing or older than any source file, then the server runs from dist/.
import { existsSync, statSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist/src/server.js');

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const stale = !existsSync(built) || Math.max(newest(join(root, 'src')), newest(join(root, 'migrations'))) > statSync(built).mtimeMs;
if (stale) {
  console.log('Building SIM Link (dist/ is missing or older than the sources)…');
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
}
