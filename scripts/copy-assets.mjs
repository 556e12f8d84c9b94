// The build copies what is not TypeScript: htmx from node_modules into public/vendor.
import { mkdirSync, copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
mkdirSync(`${root}public/vendor`, { recursive: true });
copyFileSync(`${root}node_modules/htmx.org/dist/htmx.min.js`, `${root}public/vendor/htmx.min.js`);
