import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

// Builds promdump (Prometheus's own parsers) before any test starts, and hands its path to the differential
// test. Progress goes to stderr; a missing Go toolchain fails the run loudly (CI has Go).
export default function setup(project: TestProject): void {
  const script = fileURLToPath(new URL('./build-promdump.sh', import.meta.url));
  const out = execFileSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  project.provide('promdump', out.trim().split('\n').pop()!);
}

declare module 'vitest' {
  export interface ProvidedContext {
    promdump: string;
  }
}
