// The project's root folder, from the sources (src/) or the build (dist/src/): views and public files
// are not compiled, so both find them in the same place.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const fromBuild = import.meta.url.includes('/dist/src/');
export const rootDir = fileURLToPath(new URL(fromBuild ? '../../' : '../', import.meta.url));
export const viewsDir = join(rootDir, 'views');
export const publicDir = join(rootDir, 'public');
/** htmx's dist folder in node_modules (the app serves htmx.min.js from there). */
export const htmxDir = dirname(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'));
