import { defineConfig } from 'vitest/config';

// Container images (see images.test.ts). The first beforeAll of a cold run may install docker.io and
// debootstrap, build the stand-in base image and run `npm ci` inside two image builds.
export default defineConfig({
  test: {
    include: ['test/containers/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 1_800_000,
  },
});
