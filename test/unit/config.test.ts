import { describe, expect, it } from 'vitest';
import { loadAggregatorConfig } from '../../aggregator/src/config.js';
import { parseDuration } from '../../common/src/duration.js';
import { ConfigError } from '../../common/src/errors.js';

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
    [['--nope'], "Unknown option '--nope'"],
    [['--cluster-name', 'prod eu'], '--cluster-name: "prod eu" is not a valid label value'],
    [['--cluster-name', `c${'x'.repeat(63)}`], 'is not a valid label value (at most 63'],
    [['--managed-tls-secret', 'just-a-name', '--managed-tls-hosts', 'a'], '--managed-tls-secret: "just-a-name" is not NAMESPACE/NAME'],
    [['--managed-tls-secret', 'ns/tls'], '--managed-tls-hosts is required with --managed-tls-secret'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--tls-cert-file', 'a.crt', '--tls-key-file', 'a.key'], '--managed-tls-secret cannot be combined with --tls-cert-file'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--standalone'], '--managed-tls-secret cannot be combined with --standalone'],
    [['--managed-tls-secret', 'ns/tls', '--managed-tls-hosts', 'a', '--managed-tls-overlap', '1500h'], 'the rotation overlap (5400000000ms) must be at most 1/6 of the CA validity'],
  ])('rejects %j with one clear line naming the flag', (argv, message, env = {}) => {
    expect(() => loadAggregatorConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadAggregatorConfig(argv, env)).toThrow(message);
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
