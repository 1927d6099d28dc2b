import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/processes.js';

// The wire types are generated from proto/ and checked in: this regenerates them with package.json's own
// `gen:proto` command and fails when the checked-in files differ (run `npm run gen:proto`).
const CHECKED_IN = 'common/src/wire/generated';

function files(dir: string): Map<string, string> {
  const names = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort();
  return new Map(names.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

describe('generated wire types', () => {
  it('are current with proto/', () => {
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['gen:proto']!;
    expect(script).toContain(`--outDir=${CHECKED_IN} `);
    const out = mkdtempSync(join(tmpdir(), 'metrics-relay-gen-'));
    const [bin, ...args] = script.replace(`--outDir=${CHECKED_IN}`, `--outDir=${out}`).split(/\s+/);
    execFileSync(join(ROOT, 'node_modules/.bin', bin!), args, { cwd: ROOT, stdio: 'pipe' });
    const fresh = files(out);
    expect(fresh.size).toBeGreaterThan(5);
    expect(files(join(ROOT, CHECKED_IN))).toEqual(fresh);
  });
});
