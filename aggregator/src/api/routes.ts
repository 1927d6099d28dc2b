import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { parseSelector, SelectorError, type Selector } from '../selector.js';
import { formatQuantity, QuantityError } from '../quantity.js';
import { rfc3339 as timestamp } from '../timestamp.js';
import { ChunkWriter } from './chunk-writer.js';
import { ApiError, badRequest, internal, notFound } from '../errors.js';
import { statusBody } from './status.js';
import type { DescribedObject, ExternalValue, MetricsProvider, MetricValue } from './provider.js';
import { OBJECT_KINDS, POD_KIND, type ObjectKind } from '../kube/object-selectors.js';
import { CUSTOM_GROUP, CUSTOM_VERSIONS, Discovery, EXTERNAL_GROUP, EXTERNAL_VERSION, apiGroup, apiGroupList } from './discovery.js';
import { openapiV2, openapiV3GroupVersion, openapiV3Index } from './openapi.js';
import type { AggregatorMetrics } from '../self-metrics.js';

const KINDS_BY_RESOURCE = new Map<string, ObjectKind>([[POD_KIND.resource, POD_KIND], ...OBJECT_KINDS.map((k) => [k.resource, k] as const)]);
const SUPPORTED = [POD_KIND, ...OBJECT_KINDS].map((k) => k.resource).join(', ');

/** What a request path was, for the latency histogram (bounded label values). */
type PathKind = 'discovery' | 'pods' | 'object' | 'namespace' | 'external' | 'openapi' | 'other';

export interface ApiRoutesOptions {
  provider: MetricsProvider;
  discovery: Discovery;
  metrics: AggregatorMetrics;
  logger: Logger;
  now?: () => number;
}

/**
 * The custom and external metrics APIs, discovery and OpenAPI, as one express handler. Every response is JSON
 * with an explicit Content-Type (the HPA asks for protobuf and must still get JSON); every error is a metav1.Status.
 * Paths are split on "/" and decoded per segment, so `%2A` and `*` are the same wildcard.
 */
export function createApiRoutes(opts: ApiRoutesOptions): RequestHandler {
  const { provider, discovery, metrics, logger } = opts;
  const now = opts.now ?? Date.now;
  return (req: Request, res: Response, next: NextFunction): void => {
    const rawPath = (req.originalUrl.split('?')[0] ?? '/').replace(/\/+$/, '') || '/';
    if (!rawPath.startsWith('/apis') && !rawPath.startsWith('/openapi')) return next();
    const started = process.hrtime.bigint();
    let kind: PathKind = 'other';
    const finish = (code: number, body: string | Buffer | Buffer[], gzip = false): void => {
      res.status(code).type('application/json');
      if (gzip) res.set({ 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' });
      if (Array.isArray(body)) {
        res.set('Content-Length', String(body.reduce((n, b) => n + b.length, 0)));
        for (const b of body) res.write(b);
        res.end();
      } else res.send(body);
      metrics.requestDuration.observe({ kind, code: String(code) }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource: ${req.method} ${rawPath} (only GET is served)`);
      }
      let segments: string[];
      try {
        segments = rawPath.split('/').slice(1).map((s) => decodeURIComponent(s));
      } catch {
        throw badRequest('invalid request path: bad percent-encoding');
      }
      const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
      const result = route(segments, query);
      kind = result.kind;
      if (result.values) {
        // One observation per answer, its oldest value: a 1000-pod answer would otherwise cost 1000 observe()s.
        let oldest = Infinity;
        for (const v of result.values) if (v.sampleMs < oldest) oldest = v.sampleMs;
        if (oldest !== Infinity) metrics.servedAge.observe(Math.max(0, now() - oldest) / 1000);
      }
      if (result.kind === 'discovery' && typeof result.body === 'string' && result.body.length > 8192 && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) finish(200, discovery.gzip(result.body), true);
      else finish(200, result.body);
    } catch (err) {
      const apiErr = toApiError(err, logger);
      finish(apiErr.code, JSON.stringify(statusBody(apiErr)));
    }
  };

  function route(seg: string[], query: URLSearchParams): { kind: PathKind; body: string | Buffer[]; values?: { sampleMs: number }[] } {
    if (seg[0] === 'openapi') return { kind: 'openapi', body: openapiRoute(seg) };
    // seg[0] === 'apis'
    if (seg.length === 1) return { kind: 'discovery', body: JSON.stringify(apiGroupList()) };
    const group = seg[1]!;
    if (group !== CUSTOM_GROUP && group !== EXTERNAL_GROUP) throw notFound(`the server could not find the requested resource: API group "${group}" is not served here (only ${CUSTOM_GROUP} and ${EXTERNAL_GROUP})`);
    if (seg.length === 2) return { kind: 'discovery', body: JSON.stringify(apiGroup(group)) };
    const version = seg[2]!;
    const versions: readonly string[] = group === CUSTOM_GROUP ? CUSTOM_VERSIONS : [EXTERNAL_VERSION];
    if (!versions.includes(version)) throw notFound(`the server could not find the requested resource: ${group}/${version} is not served (versions: ${versions.join(', ')})`);
    const rest = seg.slice(3);
    if (rest.length === 0) return { kind: 'discovery', body: group === CUSTOM_GROUP ? discovery.customResourceList(version) : discovery.externalResourceList() };
    if (rest.some((s) => s === '')) throw badRequest('invalid request path: empty path segment');
    return group === CUSTOM_GROUP ? customRoute(version, rest, query) : externalRoute(rest, query);
  }

  function customRoute(version: string, p: string[], query: URLSearchParams) {
    // namespaces/{ns}/metrics/{metric}                      (C3)
    // namespaces/{ns}/{resource}/{name|*}/{metric}          (C1, C2)
    if (p[0] !== 'namespaces' || (p.length !== 4 && p.length !== 5)) {
      if (p[0] !== 'namespaces' && (p.length === 3)) throw notFound(`the server could not find the requested resource: root-scoped objects (${p[0]}) are not served; metrics-relay serves namespaced ${SUPPORTED} and namespaces/{ns}/metrics/{metric}`);
      throw badRequest(`invalid request path: expected /apis/${CUSTOM_GROUP}/${version}/namespaces/{namespace}/{resource}/{name}/{metric} or .../namespaces/{namespace}/metrics/{metric}`);
    }
    const namespace = p[1]!;
    const metricSelector = selectorParam(query, 'metricLabelSelector');
    if (p.length === 4) {
      if (p[2] !== 'metrics') throw badRequest(`invalid request path: expected .../namespaces/${namespace}/metrics/{metric} or .../namespaces/${namespace}/{resource}/{name}/{metric}`);
      const v = provider.namespaceMetric(namespace, p[3]!, metricSelector);
      return { kind: 'namespace' as const, body: metricValueList(version, [v], metricSelector), values: [v] };
    }
    const [, , resource, name, metric] = p as [string, string, string, string, string];
    const labelSelector = selectorParam(query, 'labelSelector');
    const kind = KINDS_BY_RESOURCE.get(resource);
    if (!kind) throw notFound(`the server could not find the metric ${metric} for ${resource}: resource "${resource}" is not supported (supported: ${SUPPORTED}, and namespaces/{ns}/metrics/{metric})`);
    let values: MetricValue[];
    if (kind === POD_KIND) values = provider.podMetrics(namespace, name, metric, labelSelector, metricSelector);
    else if (name === '*') values = provider.objectMetrics(kind, namespace, metric, labelSelector, metricSelector);
    else values = [provider.objectMetric(kind, namespace, name, metric, metricSelector)];
    return { kind: kind === POD_KIND ? ('pods' as const) : ('object' as const), body: metricValueList(version, values, metricSelector), values };
  }

  function externalRoute(p: string[], query: URLSearchParams) {
    if (p.length !== 3 || p[0] !== 'namespaces') throw badRequest(`invalid request path: expected /apis/${EXTERNAL_GROUP}/${EXTERNAL_VERSION}/namespaces/{namespace}/{metric}`);
    const selector = selectorParam(query, 'labelSelector');
    const values = provider.externalMetrics(p[1]!, p[2]!, selector);
    return { kind: 'external' as const, body: externalValueList(values), values };
  }
}

function openapiRoute(seg: string[]): string {
  if (seg.length === 2 && seg[1] === 'v2') return openapiV2();
  if (seg.length === 2 && seg[1] === 'v3') return openapiV3Index();
  if (seg.length === 5 && seg[1] === 'v3' && seg[2] === 'apis') {
    const doc = openapiV3GroupVersion(seg[3]!, seg[4]!);
    if (doc) return doc;
  }
  throw notFound(`the server could not find the requested resource: /${seg.join('/')}`);
}

function selectorParam(query: URLSearchParams, name: string): Selector {
  const raw = query.get(name) ?? '';
  try {
    const sel = parseSelector(raw);
    // The metric selector is echoed into every item as a LabelSelector, which cannot express > and <.
    if (name === 'metricLabelSelector') sel.toLabelSelector();
    return sel;
  } catch (err) {
    if (err instanceof SelectorError) throw badRequest(`invalid ${name} "${raw}": ${err.message}`);
    throw err;
  }
}

// NOTE: the provider leaves out values and times that cannot be served (Freshness.servable); these throws are a
// last guard, a 500 for the whole answer.
function quantity(v: { value: number; metric: string }, what: string): string {
  try {
    return formatQuantity(v.value);
  } catch (err) {
    if (err instanceof QuantityError) throw internal(`value ${v.value} of metric ${v.metric} for ${what} cannot be served: ${err.message}`);
    throw err;
  }
}

/** MetricValueList in the shape of the request's version (docs/protocol.md#metric-values): v1beta1 metricName/selector/window, v1beta2 metric{}/windowSeconds. */
function metricValueList(version: string, values: MetricValue[], metricSelector: Selector): Buffer[] {
  // NOTE: written as bytes from fragments encoded once (the describedObject once per pod, the metric once per
  // answer), not objects + JSON.stringify: a 1000-pod answer then costs a fraction of the work and garbage.
  const selector = JSON.stringify(metricSelector.toLabelSelector());
  const v1 = version === 'v1beta1';
  const windowKey = Buffer.from(v1 ? '","window":' : '","windowSeconds":');
  const itemEnd = Buffer.from(v1 ? `","selector":${selector}}` : '"}');
  const w = new ChunkWriter(values.length * 256);
  w.bytes(Buffer.from(`{"kind":"MetricValueList","apiVersion":"${CUSTOM_GROUP}/${version}","metadata":{},"items":[`));
  let metric: string | undefined;
  let head = EMPTY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v.metric !== metric) {
      metric = v.metric;
      head = Buffer.from(v1 ? `"metricName":${JSON.stringify(metric)},"timestamp":"` : `"metric":{"name":${JSON.stringify(metric)},"selector":${selector}},"timestamp":"`);
    }
    if (i > 0) w.bytes(COMMA);
    w.bytes(describedJson(v.object));
    w.bytes(head);
    w.ascii(timestamp(v.sampleMs));
    w.bytes(windowKey);
    w.ascii(String(Math.round(v.windowMs / 1000)));
    w.bytes(VALUE_KEY);
    w.ascii(quantity(v, `${v.object.kind} ${v.object.name}`));
    w.bytes(itemEnd);
  }
  w.bytes(LIST_END);
  return w.end();
}
const EMPTY = Buffer.alloc(0);
const COMMA = Buffer.from(',');
const VALUE_KEY = Buffer.from(',"value":"');
const LIST_END = Buffer.from(']}');

/** `{"describedObject":{...},` as UTF-8, encoded once per DescribedObject (the provider reuses one per pod). */
const describedCache = new WeakMap<DescribedObject, Buffer>();
function describedJson(o: DescribedObject): Buffer {
  let json = describedCache.get(o);
  if (json === undefined) {
    json = Buffer.from(`{"describedObject":{"kind":"${o.kind}","apiVersion":"${o.apiVersion}",${o.namespace === undefined ? '' : `"namespace":${JSON.stringify(o.namespace)},`}"name":${JSON.stringify(o.name)}},`);
    describedCache.set(o, json);
  }
  return json;
}

function externalValueList(values: ExternalValue[]): string {
  const items = values.map((v) => ({
    metricName: v.metric,
    metricLabels: v.labels,
    timestamp: timestamp(v.sampleMs),
    window: Math.round(v.windowMs / 1000),
    value: quantity(v, 'series ' + JSON.stringify(v.labels)),
  }));
  return JSON.stringify({ kind: 'ExternalMetricValueList', apiVersion: `${EXTERNAL_GROUP}/${EXTERNAL_VERSION}`, metadata: {}, items });
}

function toApiError(err: unknown, logger: Logger): ApiError {
  if (err instanceof ApiError) return err;
  // NOTE: unknown errors are logged in full and never echoed to the client.
  logger.error({ err }, 'unexpected error serving a metrics request');
  return internal('unable to fetch metrics');
}
