import { createHash } from 'node:crypto';
import { CUSTOM_GROUP, CUSTOM_VERSIONS, EXTERNAL_GROUP, EXTERNAL_VERSION } from './discovery.js';

// Valid OpenAPI documents describing the metric paths, so the kube-aggregator merges them without logging errors.
// Definitions are named like the Go types (io.k8s.metrics.pkg.apis...) so they never clash with other groups'.

const quantity = { type: 'string', description: 'Kubernetes resource.Quantity in canonical DecimalSI form' };
const time = { type: 'string', format: 'date-time' };
const objectReference = {
  type: 'object',
  properties: Object.fromEntries(['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((k) => [k, { type: 'string' }])),
};
const labelSelector = {
  type: 'object',
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    matchExpressions: { type: 'array', items: { type: 'object', properties: { key: { type: 'string' }, operator: { type: 'string' }, values: { type: 'array', items: { type: 'string' } } } } },
  },
};

type Ref = (name: string) => { $ref: string };

function definitions(ref: Ref): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  for (const v of CUSTOM_VERSIONS) {
    const p = `io.k8s.metrics.pkg.apis.custom_metrics.${v}`;
    const item =
      v === 'v1beta1'
        ? { describedObject: objectReference, metricName: { type: 'string' }, timestamp: time, window: { type: 'integer', format: 'int64' }, value: quantity, selector: labelSelector }
        : { describedObject: objectReference, metric: { type: 'object', properties: { name: { type: 'string' }, selector: labelSelector } }, timestamp: time, windowSeconds: { type: 'integer', format: 'int64' }, value: quantity };
    defs[`${p}.MetricValue`] = { type: 'object', properties: item, required: ['describedObject', 'timestamp', 'value'] };
    defs[`${p}.MetricValueList`] = {
      type: 'object',
      properties: { kind: { type: 'string' }, apiVersion: { type: 'string' }, metadata: { type: 'object' }, items: { type: 'array', items: ref(`${p}.MetricValue`) } },
      required: ['items'],
      'x-kubernetes-group-version-kind': [{ group: CUSTOM_GROUP, version: v, kind: 'MetricValueList' }],
    };
  }
  const e = `io.k8s.metrics.pkg.apis.external_metrics.${EXTERNAL_VERSION}`;
  defs[`${e}.ExternalMetricValue`] = {
    type: 'object',
    properties: { metricName: { type: 'string' }, metricLabels: { type: 'object', additionalProperties: { type: 'string' } }, timestamp: time, window: { type: 'integer', format: 'int64' }, value: quantity },
    required: ['metricName', 'metricLabels', 'timestamp', 'value'],
  };
  defs[`${e}.ExternalMetricValueList`] = {
    type: 'object',
    properties: { kind: { type: 'string' }, apiVersion: { type: 'string' }, metadata: { type: 'object' }, items: { type: 'array', items: ref(`${e}.ExternalMetricValue`) } },
    required: ['items'],
    'x-kubernetes-group-version-kind': [{ group: EXTERNAL_GROUP, version: EXTERNAL_VERSION, kind: 'ExternalMetricValueList' }],
  };
  return defs;
}

interface PathSpec { path: string; list: string; params: string[] }

function pathSpecs(group: string, v: string): PathSpec[] {
  const base = `/apis/${group}/${v}`;
  if (group === EXTERNAL_GROUP) {
    return [{ path: `${base}/namespaces/{namespace}/{metric}`, list: `io.k8s.metrics.pkg.apis.external_metrics.${v}.ExternalMetricValueList`, params: ['namespace', 'metric'] }];
  }
  const list = `io.k8s.metrics.pkg.apis.custom_metrics.${v}.MetricValueList`;
  return [
    { path: `${base}/namespaces/{namespace}/{resource}/{name}/{metric}`, list, params: ['namespace', 'resource', 'name', 'metric'] },
    { path: `${base}/namespaces/{namespace}/metrics/{metric}`, list, params: ['namespace', 'metric'] },
  ];
}

const QUERY = ['labelSelector', 'metricLabelSelector'];

function operation(spec: PathSpec, group: string, ref: Ref, v3: boolean): Record<string, unknown> {
  const parameters = [
    ...spec.params.map((name) => (v3 ? { name, in: 'path', required: true, schema: { type: 'string' } } : { name, in: 'path', required: true, type: 'string' })),
    ...QUERY.filter((q) => group === CUSTOM_GROUP || q === 'labelSelector').map((name) => (v3 ? { name, in: 'query', schema: { type: 'string' } } : { name, in: 'query', type: 'string' })),
  ];
  const ok = v3 ? { description: 'OK', content: { 'application/json': { schema: ref(spec.list) } } } : { description: 'OK', schema: ref(spec.list) };
  return { get: { operationId: `get${group === CUSTOM_GROUP ? 'Custom' : 'External'}Metric${spec.params.length}`, parameters, responses: { '200': ok } } };
}

/** Swagger 2.0 document for /openapi/v2. */
export function openapiV2(): string {
  const ref: Ref = (n) => ({ $ref: `#/definitions/${n}` });
  const paths: Record<string, unknown> = {};
  for (const [group, versions] of [[CUSTOM_GROUP, CUSTOM_VERSIONS], [EXTERNAL_GROUP, [EXTERNAL_VERSION]]] as const) {
    for (const v of versions) for (const spec of pathSpecs(group, v)) paths[spec.path] = operation({ ...spec, list: spec.list }, group, ref, false);
  }
  // NOTE: operationIds must be unique across the whole merged spec; suffix with the path.
  for (const [p, op] of Object.entries(paths)) ((op as { get: { operationId: string } }).get.operationId += `_${hash(p).slice(0, 8)}`);
  return JSON.stringify({ swagger: '2.0', info: { title: 'metrics-relay', version: 'v1' }, paths, definitions: definitions(ref) });
}

/** OpenAPI 3.0 document for one group-version (/openapi/v3/apis/{group}/{version}). */
export function openapiV3GroupVersion(group: string, v: string): string | undefined {
  const known = (group === CUSTOM_GROUP && (CUSTOM_VERSIONS as readonly string[]).includes(v)) || (group === EXTERNAL_GROUP && v === EXTERNAL_VERSION);
  if (!known) return undefined;
  const ref: Ref = (n) => ({ $ref: `#/components/schemas/${n}` });
  const paths: Record<string, unknown> = {};
  for (const spec of pathSpecs(group, v)) paths[spec.path] = operation(spec, group, ref, true);
  return JSON.stringify({ openapi: '3.0.0', info: { title: 'metrics-relay', version: v }, paths, components: { schemas: definitions(ref) } });
}

/** The /openapi/v3 index: each group-version with a content hash so clients cache correctly. */
export function openapiV3Index(): string {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [group, versions] of [[CUSTOM_GROUP, CUSTOM_VERSIONS], [EXTERNAL_GROUP, [EXTERNAL_VERSION]]] as const) {
    for (const v of versions) {
      const doc = openapiV3GroupVersion(group, v)!;
      paths[`apis/${group}/${v}`] = { serverRelativeURL: `/openapi/v3/apis/${group}/${v}?hash=${hash(doc).toUpperCase()}` };
    }
  }
  return JSON.stringify({ paths });
}

function hash(s: string): string {
  return createHash('sha512').update(s).digest('hex').slice(0, 128);
}
