// Builds (or finds cached) etcd, kube-apiserver, kube-controller-manager and helm before any e2e test starts, so a
// cold machine's ~10-minute Go build is never inside a test's or hook's timeout. Progress goes to stderr.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory holding etcd, kube-apiserver, kube-controller-manager and helm (test/e2e/k8s/build.sh). */
    k8sBinDir: string;
  }
}

const BUILD = fileURLToPath(new URL('./k8s/build.sh', import.meta.url));

export default async function setup(project: TestProject): Promise<void> {
  const t0 = Date.now();
  process.stderr.write(`[e2e setup] Kubernetes binaries: bash ${BUILD} (a cold build takes about 10 minutes on 2 cores)\n`);
  const binDir = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [BUILD], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim().split('\n').pop()!) : reject(new Error(`${BUILD} exited with ${code}`))));
  });
  process.stderr.write(`[e2e setup] binaries ready in ${binDir} after ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  project.provide('k8sBinDir', binDir);
}
