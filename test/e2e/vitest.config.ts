// The browser tests (`npm run test:e2e`): Debian's Chromium through playwright-core against the built app,
// started once by global-setup.ts on a fresh database. Files run one after another (one app, one browser
// each, a 2-core CI machine); every scenario uses endpoints and SIMs of its own.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/e2e/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 240_000,
    allowOnly: false,
  },
});
