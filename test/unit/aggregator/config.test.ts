import { describe, expect, it } from 'vitest';
import { loadAggregatorConfig } from '../../../aggregator/src/config.js';
import { parseDuration } from '../../../common/src/duration.js';
import { ConfigError, type Problem } from '../../../common/src/errors.js';

/** The problems of the one ConfigError that loading `argv` throws. */
function problemsOf(argv: string[]): readonly Problem[] {
  try {
    loadAggregatorConfig(argv, {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${argv.join(' ')}`);
}

describe('aggregator configuration', () => {
  it('has the documented defaults', () => {
    const c = loadAggregatorConfig([], {});
    expect(c).toMatchObject({ apiPort: 6443, ingestPort: 9443, metricsPort: 9090, standalone: false, expireAfterMs: 600_000, maxSeriesPerPod: 1000, staleAfterMs: undefined });
  });

  it('reads RELAY_* env vars, and flags win', () => {
    expect(loadAggregatorConfig([], { RELAY_API_PORT: '7000', RELAY_STALE_AFTER: '30s' })).toMatchObject({ apiPort: 7000, staleAfterMs: 30_000 });
    expect(loadAggregatorConfig(['--api-port', '7001'], { RELAY_API_PORT: '7000' }).apiPort).toBe(7001);
  });

  it('takes booleans as --flag, --flag=true and --flag=false', () => {
    expect(loadAggregatorConfig(['--standalone=true'], {}).standalone).toBe(true);
    expect(loadAggregatorConfig(['--standalone=false'], { RELAY_STANDALONE: 'true' }).standalone).toBe(false);
    expect(() => loadAggregatorConfig(['--standalone=maybe'], {})).toThrow('--standalone: "maybe" is not a boolean (true or false)');
  });

  it('--standalone binds loopback unless --bind-address says otherwise', () => {
    expect(loadAggregatorConfig(['--standalone'], {}).bindAddress).toBe('127.0.0.1');
    expect(loadAggregatorConfig([], {}).bindAddress).toBe('0.0.0.0');
    expect(loadAggregatorConfig(['--standalone', '--bind-address', '0.0.0.0'], {}).bindAddress).toBe('0.0.0.0');
  });

  it.each<[string[], string, Record<string, string>?]>([
    [['--api-port', 'x'], '--api-port: "x" is not a port number (0-65535)'],
    [[], 'RELAY_STALE_AFTER (--stale-after): "soon" is not a duration (e.g. 500ms, 5s, 1m)', { RELAY_STALE_AFTER: 'soon' }],
    [['--tls-cert-file', 'a.crt'], '--tls-cert-file and --tls-key-file must be given together'],
    [['--api-port', '9090'], '--api-port and --metrics-port are both 9090'],
    [['--log-level', 'loud'], '--log-level: "loud" is not one of trace, debug, info, warn, error, fatal, silent'],
    [['--nope'], 'unknown flag "--nope"'],
    [['--cluster-name', 'prod eu'], '--cluster-name: "prod eu" is not a valid label value'],
    [['--cluster-name', `c${'x'.repeat(63)}`], 'is not a valid label value (at most 63'],
    [['--managed-tls-secret', 'just-a-name', '--managed-tls-hosts', 'a'], '--managed-tls-secret: "just-a-name" is not NAMESPACE/NAME'],
    [['--managed-tls-secret', 'ns/tls'], '--managed-tls-hosts is required with --managed-tls-secret'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--tls-cert-file', 'a.crt', '--tls-key-file', 'a.key'], '--managed-tls-secret cannot be combined with --tls-cert-file'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--standalone'], '--managed-tls-secret cannot be combined with --standalone'],
    [['--node-agent-service-account', 'relay:agent'], '--node-agent-service-account: "relay:agent" is not NAMESPACE/NAME'],
    [['--node-agent-service-account', 'relay/agent', '--standalone'], '--node-agent-service-account cannot be combined with --standalone'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--managed-tls-overlap', '1500h'], 'the rotation overlap (5400000000ms) must be at most 1/6 of the CA validity'],
  ])('rejects %j with one clear line naming the flag', (argv, message, env = {}) => {
    expect(() => loadAggregatorConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadAggregatorConfig(argv, env)).toThrow(message);
  });

  it('reports every problem at once, each naming its flag, and only those', () => {
    const argv = ['--tls-cert-file', 'a.crt', '--stale-after', '20m', '--max-series-per-pod', '0', '--max-response-bytes', '0', '--log-level', 'loud', '--api-port', '9443', '--inject-image', 'relay:1'];
    const problems = problemsOf(argv);
    expect(problems).toEqual([
      { flag: 'inject-aggregator', message: '--inject-aggregator is required with --inject-image (the address injected sidecars stream to)' },
      { flag: 'tls-cert-file', message: '--tls-cert-file and --tls-key-file must be given together' },
      { flag: 'expire-after', message: '--expire-after must be longer than --stale-after' },
      { flag: 'max-series-per-pod', message: '--max-series-per-pod must be at least 1' },
      { flag: 'max-response-bytes', message: '--max-response-bytes must be at least 1' },
      { flag: 'log-level', message: '--log-level: "loud" is not one of trace, debug, info, warn, error, fatal, silent' },
      { flag: 'api-port', message: '--api-port and --ingest-port are both 9443' },
    ]);
    expect(() => loadAggregatorConfig(argv, {})).toThrow(problems.map((p) => p.message).join('; '));
    // The same flags with their problems fixed load, so each problem above came from its own flag.
    expect(loadAggregatorConfig(['--tls-cert-file', 'a.crt', '--tls-key-file', 'a.key', '--stale-after', '20m', '--expire-after', '30m', '--max-series-per-pod', '1', '--max-response-bytes', '1', '--log-level', 'warn', '--api-port', '9444', '--inject-image', 'relay:1', '--inject-aggregator', 'relay:9443'], {})).toMatchObject({ staleAfterMs: 1_200_000, maxSeriesPerPod: 1, apiPort: 9444 });
  });

  it('reports every unparsable value at once, before any check across flags', () => {
    expect(problemsOf(['--api-port', 'x', '--warmup', 'soon', '--nope', '--tls-cert-file', 'a.crt'])).toEqual([
      { message: 'unknown flag "--nope"' },
      { flag: 'api-port', message: '--api-port: "x" is not a port number (0-65535)' },
      { flag: 'warmup', message: '--warmup: "soon" is not a duration (e.g. 500ms, 5s, 1m)' },
    ]);
  });
});

describe('cluster name and managed TLS', () => {
  it('--cluster-name is optional and kept as given', () => {
    expect(loadAggregatorConfig([], {}).clusterName).toBeUndefined();
    expect(loadAggregatorConfig(['--cluster-name', 'prod-eu-1'], {}).clusterName).toBe('prod-eu-1');
    expect(loadAggregatorConfig([], { RELAY_CLUSTER_NAME: 'staging_2.a' }).clusterName).toBe('staging_2.a');
  });

  it('--managed-tls-* become one setting, the lease defaulting to the Secret and the CA ConfigMap to --inject-ca-configmap', () => {
    const c = loadAggregatorConfig(['--managed-tls-secret', 'relay/relay-tls', '--managed-tls-hosts', 'relay.relay.svc, 127.0.0.1', '--managed-tls-apiservices', 'v1beta2.custom.metrics.k8s.io', '--inject-ca-configmap', 'relay-ca'], {});
    expect(c.managedTls).toEqual({
      namespace: 'relay', secret: 'relay-tls', lease: 'relay-tls', hosts: ['relay.relay.svc', '127.0.0.1'],
      apiServices: ['v1beta2.custom.metrics.k8s.io'], webhooks: [], caConfigMap: 'relay-ca',
      caValidityMs: 365 * 86_400_000, certValidityMs: 90 * 86_400_000, overlapMs: 3_600_000,
    });
    expect(loadAggregatorConfig([], {}).managedTls).toBeUndefined();
  });
});

describe('Go durations', () => {
  it.each([['500ms', 500], ['5s', 5000], ['1m30s', 90_000], ['1h', 3_600_000], ['0', 0], ['1.5s', 1500]])('%s', (s, ms) => expect(parseDuration(s)).toBe(ms));
  it.each(['', '5', 's', '5x', '-1s'])('rejects %j', (s) => expect(parseDuration(s)).toBeUndefined());
});
