import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/differential/**/*.test.ts'],
    // Builds Prometheus's parsers (Go) for the differential test, once, before any test and outside test timeouts.
    globalSetup: ['test/differential/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
