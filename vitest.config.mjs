import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn the CLI and write hundreds of MB; two cores, so keep files in parallel low.
    maxWorkers: 2,
  },
});
