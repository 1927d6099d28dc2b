import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

// The import rules of the layout (docs/architecture.md): entry points in cmd/ import libraries, never the reverse,
// and common/ belongs to no binary.

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

/** Every relative module a file imports (static or dynamic), as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => relative(ROOT, join(ROOT, file, '..', s)));
}

describe('layers', () => {
  it('no library module imports an entry point (cmd/)', () => {
    const offenders = ['aggregator', 'sidecar', 'common', 'examples'].flatMap(sources).flatMap((f) => importsOf(f).filter((i) => i.startsWith('cmd/')).map((i) => `${f} -> ${i}`));
    expect(offenders).toEqual([]);
  });

  it('common/ imports neither binary', () => {
    const offenders = sources('common').flatMap((f) => importsOf(f).filter((i) => /^(aggregator|sidecar|examples)\//.test(i)).map((i) => `${f} -> ${i}`));
    expect(offenders).toEqual([]);
  });

  it('neither binary imports the other: what both need lives in common/', () => {
    const offenders = [
      ...sources('aggregator').flatMap((f) => importsOf(f).filter((i) => i.startsWith('sidecar/')).map((i) => `${f} -> ${i}`)),
      ...sources('sidecar').flatMap((f) => importsOf(f).filter((i) => i.startsWith('aggregator/')).map((i) => `${f} -> ${i}`)),
    ];
    expect(offenders).toEqual([]);
  });

  it("the aggregator's kube/ and store/ import nothing from its api/: the API layer sits on top of them", () => {
    const offenders = ['aggregator/src/kube', 'aggregator/src/store'].flatMap(sources).flatMap((f) => importsOf(f).filter((i) => i.startsWith('aggregator/src/api/')).map((i) => `${f} -> ${i}`));
    expect(offenders).toEqual([]);
    // The rule sees such imports: the API layer itself imports both.
    const fromApi = sources('aggregator/src/api').flatMap(importsOf);
    expect(fromApi.some((i) => i.startsWith('aggregator/src/store/'))).toBe(true);
    expect(fromApi.some((i) => i.startsWith('aggregator/src/kube/'))).toBe(true);
  });

  it('the rule sees imports: cmd/ itself imports both binaries', () => {
    const fromCmd = sources('cmd').flatMap(importsOf);
    expect(fromCmd.some((i) => i.startsWith('aggregator/'))).toBe(true);
    expect(fromCmd.some((i) => i.startsWith('sidecar/'))).toBe(true);
  });
});
