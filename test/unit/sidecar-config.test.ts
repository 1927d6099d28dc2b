import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSidecarConfig } from '../../sidecar/src/config.js';

const base = ['--aggregator', '127.0.0.1:9443', '--pod-name', 'p', '--pod-namespace', 'ns'];

describe('sidecar configuration', () => {
  it('has the documented defaults', () => {
    const c = loadSidecarConfig(base, {});
    expect(c).toMatchObject({ intervalMs: 5000, timeoutMs: 4000, metrics: ['cm_*'], maxSeries: 1000, maxBodyBytes: 10 * 1024 * 1024, rateWindowMs: 60_000, breakerFailures: 3, breakerResetMs: 15_000, metricsPort: 9091, insecure: false });
    expect(String(c.target)).toBe('http://127.0.0.1:8080/metrics');
    expect(c.aggregator).toEqual({ kind: 'static', targets: ['127.0.0.1:9443'] });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the pod identity from RELAY_* env (the downward API); flags win', () => {
    const env = { RELAY_POD_NAME: 'web-1', RELAY_POD_NAMESPACE: 'shop', RELAY_POD_UID: 'u1', RELAY_INTERVAL: '1s', RELAY_AGGREGATOR: 'a:1' };
    const c = loadSidecarConfig(['--pod-name', 'web-2'], env);
    expect(c.pod).toEqual({ name: 'web-2', namespace: 'shop', uid: 'u1' });
    expect(c.timeoutMs).toBe(800);
  });

  it('tells a headless Service name (resolved by DNS) from a fixed list', () => {
    expect(loadSidecarConfig([...base, '--aggregator', 'relay-ingest.metrics-relay.svc:9443'], {}).aggregator).toEqual({ kind: 'dns', host: 'relay-ingest.metrics-relay.svc', port: 9443 });
    expect(loadSidecarConfig([...base, '--aggregator', 'a:1, b:2'], {}).aggregator).toEqual({ kind: 'static', targets: ['a:1', 'b:2'] });
    expect(loadSidecarConfig([...base, '--aggregator', '[::1]:9443'], {}).aggregator).toEqual({ kind: 'static', targets: ['[::1]:9443'] });
    expect(loadSidecarConfig([...base, '--aggregator', 'localhost:9443'], {}).aggregator).toEqual({ kind: 'static', targets: ['localhost:9443'] });
  });

  it('parses --pod-labels and reads --ca-file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'));
    writeFileSync(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\n');
    const c = loadSidecarConfig([...base, '--pod-labels', 'app=web, tier=front', '--ca-file', join(dir, 'ca.crt')], {});
    expect(c.podLabels).toEqual({ app: 'web', tier: 'front' });
    expect(c.caPem).toBe('-----BEGIN CERTIFICATE-----\n');
  });

  it.each([
    [['--interval', '1s', '--timeout', '2s'], '--timeout (2000ms) must be below --interval (1000ms)'],
    [['--interval', '5s', '--rate-window', '1s'], '--rate-window (1000ms) must be at least --interval (5000ms)'],
    [['--target', 'ftp://x/metrics'], '--target: "ftp://x/metrics" must be http or https'],
    [['--target', 'not a url'], 'is not a URL'],
    [['--aggregator', 'nohost'], '--aggregator: "nohost" is not host:port'],
    [['--aggregator', 'a:99999'], '--aggregator: "a:99999" is not host:port'],
    [['--metrics', 'cm_*,a.b'], '--metrics: "a.b" is not a metric name or glob'],
    [['--metrics', ' , '], '--metrics must name at least one metric or glob'],
    [['--max-series', '0'], '--max-series must be between 1 and 20000'],
    [['--breaker-failures', '0'], '--breaker-failures must be at least 1'],
    [['--insecure', '--ca-pem', 'x'], '--insecure cannot be combined with --ca-file/--ca-pem/--token-file'],
    [['--pod-labels', 'novalue'], '--pod-labels: "novalue" is not k=v'],
    [['--pod-labels', 'a=b', '--pod-labels-file', '/etc/podinfo/labels'], '--pod-labels and --pod-labels-file exclude each other'],
    [['--token-file', '/nonexistent/token'], '--token-file: cannot read /nonexistent/token'],
    [['--log-level', 'loud'], '--log-level: "loud" is not one of'],
    [['--bind-address', 'example.com'], '--bind-address: "example.com" is not an IP address'],
    [['--interval', 'soon'], '--interval: "soon" is not a duration'],
  ])('rejects %j', (extra, message) => {
    expect(() => loadSidecarConfig([...base, ...extra], {})).toThrow(message);
  });

  it('lists every problem at once, each naming its flag', () => {
    expect(() => loadSidecarConfig(['--max-series', '0', '--metrics', 'a.b'], {})).toThrow(
      /--aggregator is required.*--pod-name is required.*--pod-namespace is required.*--metrics: "a.b".*--max-series must be/,
    );
  });
});
