import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { servingKeyPair } from '../../common/src/tls.js';
import { CLI, NODE, startRelay, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';
import { replicaSetPod, type Json } from '../helpers/webhook-fixtures.js';

// Flag values that start with '-' (a PEM) through the real CLI, in both forms.

const run = promisify(execFile);
let pem: string;
const started: RelayProcess[] = [];

beforeAll(async () => {
  pem = (await servingKeyPair(undefined, undefined, ['relay-test'])).cert;
  expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
});

/** Runs the CLI to completion; resolves with its exit code and output (a refusal is not an error here). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [CLI, ...args], { timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('metrics-relay CLI: a PEM as a flag value', () => {
  it('aggregator --inject-ca-bundle "$(cat ca.crt)": the webhook hands that exact PEM to the sidecar', async () => {
    const agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--inject-image', 'img', '--inject-aggregator', '127.0.0.1:9443', '--inject-ca-bundle', pem]);
    started.push(agg);
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', object: replicaSetPod() } };
    const res = await get(`https://127.0.0.1:${agg.ports['api']}/mutate/namespace`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(review) });
    expect(res.status).toBe(200);
    expect(res.json.response.warnings).toBeUndefined();
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString('utf8')) as Json[];
    const container = patch.find((op) => op.path === '/spec/containers/-')!.value as Json;
    expect(container.env.find((e: Json) => e.name === 'RELAY_CA_PEM')).toEqual({ name: 'RELAY_CA_PEM', value: pem });
  });

  it('sidecar --ca-pem=PEM starts', async () => {
    const sidecar = await startRelay(['sidecar', `--ca-pem=${pem}`, '--aggregator', '127.0.0.1:1', '--target', 'http://127.0.0.1:1/metrics', '--metrics-port', '0', '--bind-address', '127.0.0.1', '--pod-name', 'p', '--pod-namespace', 'ns']);
    started.push(sidecar);
    expect(sidecar.ports['metrics']).toBeGreaterThan(0);
    expect(await sidecar.stop()).toBe(0);
  });
});

describe('metrics-relay CLI: refusals', () => {
  it('every problem at once, on one line, exit 2', async () => {
    const r = await cli(['sidecar', '--nope', '--interval', 'soon', '--ca-pem', pem, '--metrics-port', '-1', '--log-level']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('metrics-relay sidecar: unknown flag "--nope"; --log-level needs a value; --interval: "soon" is not a duration (e.g. 500ms, 5s, 1m); --metrics-port: "-1" is not a port number (0-65535)\n');
  });

  it('"--help" as the value of a flag is that value, not a request for help', async () => {
    const r = await cli(['sidecar', '--aggregator', 'a:1', '--pod-name', 'p', '--pod-namespace', 'ns', '--metrics', '--help']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('metrics-relay sidecar: --metrics: "--help" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)\n');
  });

  it('--help where a flag stands prints the usage, which says values may start with "-"', async () => {
    const r = await cli(['sidecar', '--interval', '5s', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("a value may start with '-' (a PEM, a selector)");
    expect(r.stdout).toContain('(default: 60s, or 2 intervals when that is longer)  [RELAY_RATE_WINDOW]');
  });
});
