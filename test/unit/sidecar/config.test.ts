import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSidecarConfig, SIDECAR_FLAGS } from '../../../sidecar/src/config.js';
import { sidecarOptionProblems } from '../../../common/src/sidecar-options.js';
import { usage } from '../../../common/src/flags.js';
import { ConfigError } from '../../../common/src/errors.js';
import { servingKeyPair } from '../../../common/src/tls.js';

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
    [['--interval', '50ms'], '--interval must be at least 100ms, got 50ms'],
    [['--interval', '25h'], '--interval must be at most 24h, got 25h'],
    [['--breaker-reset', '600h'], '--breaker-reset must be at most 596h31m23.647s, got 600h'],
    [['--metrics', '1abc'], '--metrics: "1abc" is not a metric name or glob'],
  ])('rejects %j', (extra, message) => {
    expect(() => loadSidecarConfig([...base, ...extra], {})).toThrow(message);
  });

  it('lists every problem at once, each naming its flag', () => {
    const err = caught(() => loadSidecarConfig(['--max-series', '0', '--metrics', 'a.b'], {}));
    expect(err.message).toMatch(/^--aggregator is required.*; --metrics: "a.b".*; --max-series must be.*; --pod-name is required.*; --pod-namespace is required/);
    expect(err.problems.map((p) => p.flag)).toEqual(['aggregator', 'metrics', 'max-series', 'pod-name', 'pod-namespace']);
  });

  it('a bad interval is reported alone, not again through the timeout, rate window and breaker it sets', () => {
    expect(caught(() => loadSidecarConfig([...base, '--interval', '0s'], {})).message).toBe('--interval must be at least 100ms, got 0ms');
  });
});

describe('sidecar configuration: what follows from the interval', () => {
  const at = (interval: string, extra: string[] = []) => loadSidecarConfig([...base, '--interval', interval, ...extra], {});

  it('rate window: 60s, or two intervals when that is longer; a given one wins', () => {
    expect(at('5s').rateWindowMs).toBe(60_000);
    expect(at('30s').rateWindowMs).toBe(60_000);
    expect(at('45s').rateWindowMs).toBe(90_000);
    expect(at('1h').rateWindowMs).toBe(7_200_000);
    expect(at('1h', ['--rate-window', '1h']).rateWindowMs).toBe(3_600_000);
  });

  it('timeout (80%) and breaker reset (3 intervals) follow a long interval too', () => {
    expect(at('1h')).toMatchObject({ intervalMs: 3_600_000, timeoutMs: 2_880_000, breakerResetMs: 10_800_000 });
    expect(at('24h')).toMatchObject({ intervalMs: 86_400_000, rateWindowMs: 172_800_000, breakerResetMs: 259_200_000 });
  });

  it('--help documents the derived rate window', () => {
    expect(usage('sidecar', '', SIDECAR_FLAGS)).toMatch(/--rate-window <duration>\n.*\(default: 60s, or 2 intervals when that is longer\)  \[RELAY_RATE_WINDOW\]/);
  });
});

describe('sidecarOptionProblems: the checks that need nothing from the machine', () => {
  it('accepts args without the pod identity and with files that do not exist here', () => {
    expect(sidecarOptionProblems(['--aggregator', 'a:1', '--token-file', '/nonexistent/token', '--ca-file', '/nonexistent/ca.crt', '--pod-labels-file', '/nonexistent/labels'], {})).toEqual([]);
    // The full loader needs both, and says so.
    expect(() => loadSidecarConfig(['--aggregator', 'a:1', '--token-file', '/nonexistent/token'], {})).toThrow(/--pod-name is required.*--token-file: cannot read \/nonexistent\/token/);
  });

  it('returns every problem with the flag it is about, and reads env as the sidecar does', () => {
    expect(sidecarOptionProblems(['--aggregator', 'a:1', '--interval', '50ms', '--metrics', '1abc'], { RELAY_LOG_LEVEL: 'loud' })).toEqual([
      { flag: 'interval', message: '--interval must be at least 100ms, got 50ms' },
      { flag: 'metrics', message: '--metrics: "1abc" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)' },
      { flag: 'log-level', message: '--log-level: "loud" is not one of trace, debug, info, warn, error, fatal, silent' },
    ]);
  });

  it('returns the problems of flags that do not parse (no throw)', () => {
    expect(sidecarOptionProblems(['--interval', 'soon', '--nope'], {})).toEqual([
      { message: 'unknown flag "--nope"' },
      { flag: 'interval', message: '--interval: "soon" is not a duration (e.g. 500ms, 5s, 1m)' },
    ]);
  });
});

describe('sidecar configuration: a PEM as a flag value', () => {
  it.each([
    ['--ca-pem PEM', (pem: string) => ['--ca-pem', pem]],
    ['--ca-pem=PEM', (pem: string) => [`--ca-pem=${pem}`]],
  ])('%s', async (_form, args) => {
    const { cert } = await servingKeyPair(undefined, undefined, ['relay-test']);
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const c = loadSidecarConfig([...base, ...args(cert), '--metrics', 'cm_a'], {});
    expect(c.caPem).toBe(cert);
    expect(c.metrics).toEqual(['cm_a']);
  });
});

function caught(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
