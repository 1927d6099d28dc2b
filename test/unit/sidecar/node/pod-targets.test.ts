import { describe, expect, it } from 'vitest';
import { podTargets, type PodObject } from '../../../../sidecar/src/node/pod-targets.js';

const DEFAULTS = { interval: '5s', metrics: 'cm_*' };
const ARGS = ['--aggregator=agg:9443', '--max-series=100'];

function pod(name: string, over: { annotations?: Record<string, string>; node?: string; phase?: string; ip?: string; deleting?: boolean; ports?: unknown[] } = {}): PodObject {
  return {
    metadata: { namespace: 'ns', name, uid: `uid-${name}`, labels: { app: name }, annotations: { 'metrics-relay.io/inject': 'true', ...over.annotations }, ...(over.deleting ? { deletionTimestamp: '2026-12-06T00:00:00Z' } : {}) },
    spec: { nodeName: over.node ?? 'node-a', containers: [{ name: 'app', ports: over.ports ?? [{ containerPort: 8080 }] }] },
    status: { phase: over.phase ?? 'Running', podIP: over.ip ?? '10.0.3.7' },
  };
}

describe('podTargets', () => {
  it('scrapes an opted-in Running pod of the node at its IP, with the annotations and the agent flags', () => {
    const t = podTargets([pod('a', { annotations: { 'metrics-relay.io/port': '9000', 'metrics-relay.io/path': '/m', 'metrics-relay.io/interval': '2s', 'metrics-relay.io/metrics': 'cm_a, cm_b' } })], 'node-a', DEFAULTS, ARGS).get('uid-a')!;
    expect(t.problem).toBeUndefined();
    expect(t.pod).toEqual({ namespace: 'ns', name: 'a', uid: 'uid-a' });
    expect(t.labels).toEqual({ app: 'a' });
    expect(String(t.options!.target)).toBe('http://10.0.3.7:9000/m');
    expect(t.options).toMatchObject({ intervalMs: 2000, metrics: ['cm_a', 'cm_b'], maxSeries: 100, aggregator: { kind: 'dns', host: 'agg', port: 9443 } });
  });

  it('defaults: the first containerPort, /metrics, the agent interval and metrics; IPv6 pod IPs are bracketed', () => {
    const t = podTargets([pod('a', { ip: 'fd00::7' })], 'node-a', DEFAULTS, ARGS).get('uid-a')!;
    expect(String(t.options!.target)).toBe('http://[fd00::7]:8080/metrics');
    expect(t.options).toMatchObject({ intervalMs: 5000, metrics: ['cm_*'] });
  });

  it('leaves out pods of other nodes, not opted in, not Running, without an IP, being deleted, or with a sidecar', () => {
    const pods = [
      pod('other-node', { node: 'node-b' }),
      pod('not-opted', { annotations: { 'metrics-relay.io/inject': 'false' } }),
      pod('pending', { phase: 'Pending' }),
      pod('no-ip', { ip: '' }),
      pod('deleting', { deleting: true }),
      pod('injected', { annotations: { 'metrics-relay.io/injected': 'true' } }),
      pod('wants-sidecar', { annotations: { 'metrics-relay.io/mode': 'sidecar' } }),
      pod('wants-node', { annotations: { 'metrics-relay.io/mode': 'node' } }),
    ];
    expect([...podTargets(pods, 'node-a', DEFAULTS, ARGS).values()].map((t) => t.pod.name)).toEqual(['wants-node']);
  });

  it('refuses what the sidecar would refuse, naming the annotation, and nothing is scraped', () => {
    const targets = podTargets([pod('a', { annotations: { 'metrics-relay.io/interval': '50ms' } }), pod('b', { ports: [] })], 'node-a', DEFAULTS, ARGS);
    expect(targets.get('uid-a')).toMatchObject({ options: undefined, problem: 'annotation metrics-relay.io/interval: --interval must be at least 100ms, got 50ms' });
    expect(targets.get('uid-b')?.problem).toBe('no annotation metrics-relay.io/port and the first container declares no containerPort');
  });

  it('keeps its fingerprint across label changes, and changes it with the scrape options', () => {
    const a = pod('a');
    const before = podTargets([a], 'node-a', DEFAULTS, ARGS).get('uid-a')!.fingerprint;
    a.metadata!.labels = { app: 'a', v: '2' };
    expect(podTargets([a], 'node-a', DEFAULTS, ARGS).get('uid-a')!.fingerprint).toBe(before);
    a.metadata!.annotations!['metrics-relay.io/interval'] = '1s';
    expect(podTargets([a], 'node-a', DEFAULTS, ARGS).get('uid-a')!.fingerprint).not.toBe(before);
  });
});
