import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../common/src/errors.js';
import { loadNodeAgentConfig } from '../../../../sidecar/src/node/config.js';

const problemsOf = (argv: string[], env: NodeJS.ProcessEnv = {}): string[] => {
  try {
    loadNodeAgentConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.message);
    throw err;
  }
  return [];
};

describe('node agent configuration', () => {
  it('gives every pod the shared sidecar flags, and takes the node from the downward API env', () => {
    const c = loadNodeAgentConfig(['--aggregator', 'relay-ingest.relay.svc:9443', '--max-series', '50', '--interval', '2s', '--insecure'], { RELAY_NODE_NAME: 'node-a' });
    expect(c).toMatchObject({ nodeName: 'node-a', defaults: { interval: '2000ms', metrics: 'cm_*' }, insecure: true, maxBodyBytes: 10 * 1024 * 1024 });
    expect(c.podArgs).toEqual(expect.arrayContaining(['--aggregator=relay-ingest.relay.svc:9443', '--max-series=50', '--interval=2000ms', '--insecure']));
  });

  it('reports every problem at once, each naming its flag', () => {
    expect(problemsOf(['--max-series', '0'])).toEqual([
      '--aggregator is required (host:port, a comma list, or a headless Service name with :port)',
      '--max-series must be between 1 and 20000, got 0',
      '--node-name is required (set it from the downward API: spec.nodeName)',
    ]);
  });

  it('--pods-file excludes --kubeconfig and must be readable; a CA file not there yet is no problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-config-'));
    writeFileSync(join(dir, 'pods.json'), '{"items":[]}');
    const base = ['--node-name', 'n', '--aggregator', 'a:1', '--ca-file', join(dir, 'not-yet.crt')];
    expect(problemsOf([...base, '--pods-file', join(dir, 'pods.json'), '--kubeconfig', join(dir, 'kc')])).toEqual(['--pods-file and --kubeconfig exclude each other']);
    expect(problemsOf([...base, '--pods-file', join(dir, 'missing.json')])[0]).toMatch(/^--pods-file: cannot read .*missing\.json: ENOENT/);
    expect(loadNodeAgentConfig([...base, '--pods-file', join(dir, 'pods.json')], {}).caPem).toBeUndefined();
  });
});
