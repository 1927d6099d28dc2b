import { gzipSync } from 'node:zlib';
import { OBJECT_KINDS } from '../kube/object-selectors.js';
import type { MetricsProvider } from './provider.js';

export const CUSTOM_GROUP = 'custom.metrics.k8s.io';
export const EXTERNAL_GROUP = 'external.metrics.k8s.io';
export const CUSTOM_VERSIONS = ['v1beta2', 'v1beta1'] as const;
export const EXTERNAL_VERSION = 'v1beta1';

/** Listed when nothing fresh is held, so discovery is never empty (kubectl and the aggregator then never error). */
export const PLACEHOLDER_METRIC = 'metrics-relay-no-data-yet';

const version = (group: string, v: string) => ({ groupVersion: `${group}/${v}`, version: v });

export function apiGroup(group: string): Record<string, unknown> {
  const versions = group === CUSTOM_GROUP ? CUSTOM_VERSIONS.map((v) => version(group, v)) : [version(group, EXTERNAL_VERSION)];
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions, preferredVersion: versions[0] };
}

/** Plain APIGroupList (not the aggregated v2 form), so the kube-aggregator falls back to per-version discovery. */
export function apiGroupList(): Record<string, unknown> {
  const strip = (g: Record<string, unknown>) => ({ name: g['name'], versions: g['versions'], preferredVersion: g['preferredVersion'] });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [strip(apiGroup(CUSTOM_GROUP)), strip(apiGroup(EXTERNAL_GROUP))] };
}

/**
 * APIResourceList bodies, rebuilt only when the set of fresh metric names changes (discovery is polled by the
 * kube-aggregator every minute and by every kubectl; with 1000 names the body is large).
 */
export class Discovery {
  private customKey = '\u0000';
  private customNames: string[] = [];
  private readonly customBodies = new Map<string, string>();
  private externalKey = '\u0000';
  private externalBody = '';
  private readonly gzipped = new Map<string, Buffer>();

  constructor(
    private readonly provider: Pick<MetricsProvider, 'metricNames'>,
    private readonly now: () => number = Date.now,
  ) {}

  private namesAtMs = -Infinity;
  private names: string[] = [];

  /**
   * Metric names with at least one servable series (sorted, unique across namespaces), recomputed at most once
   * a second: discovery is polled (the kube-aggregator every minute), and a name appearing or ageing out a second
   * late changes nothing for the HPA, which asks for values, not lists.
   */
  freshNames(): string[] {
    const now = this.now();
    if (now - this.namesAtMs < 1000 && now >= this.namesAtMs) return this.names;
    this.namesAtMs = now;
    this.names = this.provider.metricNames();
    return this.names;
  }

  customResourceList(v: string): string {
    const names = this.freshNames();
    const key = names.join('\n');
    if (key !== this.customKey) {
      this.customKey = key;
      this.customNames = names.length > 0 ? names : [PLACEHOLDER_METRIC];
      this.customBodies.clear();
    }
    let body = this.customBodies.get(v);
    if (!body) {
      const resources: Record<string, unknown>[] = [];
      for (const m of this.customNames) {
        resources.push(resource(`pods/${m}`, true, 'MetricValueList'));
        // NOTE: namespaces/* are root-scoped (namespaced: false); every other parent stays namespaced so the
        // aggregator's conversion to aggregated discovery never sees one parent with two scopes.
        resources.push(resource(`namespaces/${m}`, false, 'MetricValueList'));
        for (const k of OBJECT_KINDS) resources.push(resource(`${k.resource}/${m}`, true, 'MetricValueList'));
      }
      body = JSON.stringify({ kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${CUSTOM_GROUP}/${v}`, resources });
      this.customBodies.set(v, body);
    }
    return body;
  }

  /**
   * The gzip form of a body this class returned, compressed once per distinct body. Go clients (the
   * kube-aggregator, kubectl) always accept gzip, and a 1000-metric list shrinks from ~900 KB to ~30 KB.
   */
  gzip(body: string): Buffer {
    let z = this.gzipped.get(body);
    if (!z) {
      z = gzipSync(body, { level: 6 });
      if (this.gzipped.size >= 4) this.gzipped.delete(this.gzipped.keys().next().value!);
      this.gzipped.set(body, z);
    }
    return z;
  }

  externalResourceList(): string {
    const names = [...new Set(this.freshNames().map((n) => n.toLowerCase()))];
    const key = names.join('\n');
    if (key !== this.externalKey) {
      this.externalKey = key;
      const list = names.length > 0 ? names : [PLACEHOLDER_METRIC];
      this.externalBody = JSON.stringify({
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: `${EXTERNAL_GROUP}/${EXTERNAL_VERSION}`,
        resources: list.map((m) => resource(m, true, 'ExternalMetricValueList')),
      });
    }
    return this.externalBody;
  }
}

function resource(name: string, namespaced: boolean, kind: string): Record<string, unknown> {
  return { name, singularName: '', namespaced, kind, verbs: ['get'] };
}
