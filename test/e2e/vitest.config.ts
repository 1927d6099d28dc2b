import { defineConfig } from 'vitest/config';

// End-to-end tests against a real control plane (see test/e2e/README.md). One file at a time: each starts
// its own etcd/kube-apiserver/kube-controller-manager and the machine has 2 cores.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    // the first beforeAll may run a cold build of Kubernetes (test/e2e/k8s/build.sh)
    hookTimeout: 3_600_000,
  },
});
