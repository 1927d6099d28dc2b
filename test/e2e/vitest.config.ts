import { defineConfig } from 'vitest/config';

// End-to-end tests against a real control plane (see test/e2e/README.md). One file at a time: each starts
// its own etcd/kube-apiserver/kube-controller-manager and the machine has 2 cores.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    // the Kubernetes build (cold: ~10 minutes) runs here, before any test and outside every timeout
    globalSetup: ['test/e2e/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
