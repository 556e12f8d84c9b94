// The project's root folder, from the sources (src/) or the build (dist/src/): views and public files
// are not compiled, so both find them in the same place.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const fromBuild = import.meta.url.includes('/dist/src/');
export const rootDir = fileURLToPath(new URL(fromBuild ? '../../' : '../', import.meta.url));
export const viewsDir = join(rootDir, 'views');
export const publicDir = join(rootDir, 'public');
