import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { TestReporter } from '../helpers/ingest-client.js';
import { get } from '../helpers/http.js';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';

// The real aggregator process, fed over real gRPC, queried over real HTTPS.

let agg: RelayProcess;
let api: string;
let ingest: string;
const reporters: TestReporter[] = [];

function reporter(): TestReporter {
  const r = new TestReporter(ingest);
  reporters.push(r);
  return r;
}

const CM = '/apis/custom.metrics.k8s.io';
const EM = '/apis/external.metrics.k8s.io/v1beta1';
const NOW_S = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--max-series-per-pod', '50', '--warmup', '1s']);
  api = `https://127.0.0.1:${agg.ports['api']}`;
  ingest = `127.0.0.1:${agg.ports['ingest']}`;
  // shop: three web pods (app=web), one worker (app=worker); a queue exporter reported twice (two replicas).
  for (const [i, app] of [[1, 'web'], [2, 'web'], [3, 'web'], [4, 'worker']] as const) {
    await reporter()
      .hello({ namespace: 'shop', name: `${app}-${i}`, uid: `uid-${i}`, labels: { app, tier: i === 3 ? 'canary' : 'main' } })
      .snapshot([
        { name: 'cm_connection_count', value: i * 10 },
        { name: 'http_requests', labels: { verb: 'GET' }, value: 1.5, kind: 'RATE', windowMs: 60_000 },
        { name: 'http_requests', labels: { verb: 'POST' }, value: 0.25, kind: 'RATE', windowMs: 60_000 },
      ]);
  }
  for (const [i, ageMs] of [[1, 3000], [2, 1000]] as const) {
    await reporter()
      .hello({ namespace: 'shop', name: `exporter-${i}`, labels: { app: 'exporter' } })
      .snapshot([
        { name: 'cm_Queue_Depth', labels: { queue: 'orders' }, value: 7 + i },
        { name: 'cm_Queue_Depth', labels: { queue: 'mail' }, value: 3 },
      ], { scrapeTimeMs: Date.now() - ageMs });
  }
});

afterAll(async () => {
  for (const r of reporters) r.close();
  expect(await agg?.stop()).toBe(0);
});

describe('discovery', () => {
  it('lists every fresh metric for pods, namespaces and the object kinds, in both versions', async () => {
    for (const v of ['v1beta1', 'v1beta2']) {
      const res = await get(`${api}${CM}/${v}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json.kind).toBe('APIResourceList');
      expect(res.json.groupVersion).toBe(`custom.metrics.k8s.io/${v}`);
      const names = res.json.resources.map((r: { name: string }) => r.name);
      for (const prefix of ['pods', 'namespaces', 'services', 'deployments.apps', 'statefulsets.apps', 'replicasets.apps', 'daemonsets.apps', 'jobs.batch']) {
        expect(names).toContain(`${prefix}/cm_connection_count`);
      }
      expect(res.json.resources).toContainEqual({ name: 'namespaces/http_requests', singularName: '', namespaced: false, kind: 'MetricValueList', verbs: ['get'] });
      expect(res.json.resources).toContainEqual({ name: 'pods/http_requests', singularName: '', namespaced: true, kind: 'MetricValueList', verbs: ['get'] });
    }
  });

  it('sends large discovery documents gzipped to clients that accept gzip (as Go clients do)', async () => {
    const r = reporter().hello({ namespace: 'many', name: 'p1' });
    await r.snapshot(Array.from({ length: 40 }, (_, i) => ({ name: `cm_many_${i}`, value: i })));
    // Discovery lists are recomputed at most once a second.
    await eventually(async () => ((await get(`${api}${CM}/v1beta2`)).text.includes('cm_many_39') ? true : undefined), 3000);
    const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      https.get(`${api}${CM}/v1beta2`, { rejectUnauthorized: false, headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.headers['content-type']).toMatch(/^application\/json/);
    const plain = await get(`${api}${CM}/v1beta2`);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(gunzipSync(raw.body).toString())).toEqual(plain.json);
    r.goodbye();
  });

  it('lists external metric names lower-cased', async () => {
    const res = await get(`${api}${EM}`);
    expect(res.json.resources).toContainEqual({ name: 'cm_queue_depth', singularName: '', namespaced: true, kind: 'ExternalMetricValueList', verbs: ['get'] });
  });

  it('serves the group documents and a plain APIGroupList', async () => {
    const group = await get(`${api}/apis/custom.metrics.k8s.io`);
    expect(group.json.preferredVersion).toEqual({ groupVersion: 'custom.metrics.k8s.io/v1beta2', version: 'v1beta2' });
    const list = await get(`${api}/apis`, { headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } });
    expect(list.headers['content-type']).toMatch(/^application\/json/);
    expect(list.json.kind).toBe('APIGroupList');
  });
});

describe('pods metrics', () => {
  it('answers C2 (%2A wildcard, labelSelector) in the v1beta2 shape with canonical quantities', async () => {
    const res = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/%2A/cm_connection_count?labelSelector=app%3Dweb`, { headers: { accept: 'application/vnd.kubernetes.protobuf, */*' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json.kind).toBe('MetricValueList');
    expect(res.json.apiVersion).toBe('custom.metrics.k8s.io/v1beta2');
    expect(res.json.metadata).toEqual({});
    const items = [...res.json.items].sort((a, b) => a.describedObject.name.localeCompare(b.describedObject.name));
    expect(items.map((i: { value: string }) => i.value)).toEqual(['10', '20', '30']);
    expect(items[0]).toEqual({
      describedObject: { kind: 'Pod', apiVersion: 'v1', namespace: 'shop', name: 'web-1' },
      metric: { name: 'cm_connection_count', selector: null },
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      windowSeconds: 1,
      value: '10',
    });
    expect(Math.abs(Date.parse(items[0].timestamp) / 1000 - NOW_S())).toBeLessThan(30);
  });

  it('answers the same request in the v1beta1 shape, literal * accepted', async () => {
    const res = await get(`${api}${CM}/v1beta1/namespaces/shop/pods/*/cm_connection_count?labelSelector=app%3Dweb%2Ctier+in+%28main%29`);
    expect(res.status).toBe(200);
    expect(res.json.apiVersion).toBe('custom.metrics.k8s.io/v1beta1');
    expect(res.json.items).toHaveLength(2);
    expect(Object.keys(res.json.items[0])).toEqual(['describedObject', 'metricName', 'timestamp', 'window', 'value', 'selector']);
    expect(res.json.items[0].selector).toBeNull();
    expect(res.json.items[0].window).toBe(1);
  });

  it('sums the series a pod reports under one name, narrowed by metricLabelSelector, with the rate window', async () => {
    const all = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/web-1/http_requests`);
    expect(all.json.items).toHaveLength(1);
    expect(all.json.items[0].value).toBe('1750m');
    expect(all.json.items[0].windowSeconds).toBe(60);
    const get1 = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/web-1/http_requests?metricLabelSelector=verb%3DGET`);
    expect(get1.json.items[0].value).toBe('1500m');
    expect(get1.json.items[0].metric.selector).toEqual({ matchLabels: { verb: 'GET' } });
  });

  it('answers a list longer than one write buffer (64 KiB) whole, in both versions', async () => {
    // 400 pods x ~220 bytes: the answer spans several 64 KiB pieces.
    for (let i = 0; i < 400; i++) await reporter().hello({ namespace: 'wide', name: `p-${i}`, labels: { app: 'wide' } }).snapshot([{ name: 'cm_w', value: i + 0.5 }]);
    for (const v of ['v1beta1', 'v1beta2']) {
      const res = await get(`${api}${CM}/${v}/namespaces/wide/pods/*/cm_w?metricLabelSelector=x%21%3Dy`);
      expect(res.status).toBe(200);
      expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
      expect(Buffer.byteLength(res.text)).toBeGreaterThan(64 * 1024);
      const byName = new Map(res.json.items.map((i: { describedObject: { name: string }; value: string }) => [i.describedObject.name, i]));
      expect(byName.size).toBe(400);
      expect(byName.get('p-399')).toEqual({
        describedObject: { kind: 'Pod', apiVersion: 'v1', namespace: 'wide', name: 'p-399' },
        ...(v === 'v1beta1'
          ? { metricName: 'cm_w', window: 1, selector: { matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['y'] }] } }
          : { metric: { name: 'cm_w', selector: { matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['y'] }] } }, windowSeconds: 1 }),
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        value: '399500m',
      });
    }
  });

  it("observes each answer's oldest value age once in the self-metrics", async () => {
    const count = async () => Number(/metrics_relay_aggregator_served_value_age_seconds_count (\d+)/.exec((await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`)).text)?.[1]);
    const before = await count();
    const res = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/cm_connection_count`);
    expect(res.json.items).toHaveLength(4);
    expect(await count()).toBe(before + 1);
  });

  it('returns exactly the pods the selector matches, once each', async () => {
    const res = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/cm_connection_count?labelSelector=app+in+%28web%2Cworker%29%2C%21missing`);
    expect(res.json.items.map((i: { describedObject: { name: string } }) => i.describedObject.name).sort()).toEqual(['web-1', 'web-2', 'web-3', 'worker-4']);
  });
});

describe('object metrics (standalone: objects by pod-label convention)', () => {
  it('aggregates a Service and a Deployment over their pods (sum)', async () => {
    for (const res of ['services', 'deployments.apps']) {
      const r = await get(`${api}${CM}/v1beta2/namespaces/shop/${res}/web/cm_connection_count`);
      expect(r.status).toBe(200);
      expect(r.json.items).toHaveLength(1);
      expect(r.json.items[0].value).toBe('60');
      expect(r.json.items[0].describedObject).toEqual(res === 'services' ? { kind: 'Service', apiVersion: 'v1', namespace: 'shop', name: 'web' } : { kind: 'Deployment', apiVersion: 'apps/v1', namespace: 'shop', name: 'web' });
    }
  });

  it('aggregates over the namespace (C3)', async () => {
    const r = await get(`${api}${CM}/v1beta1/namespaces/shop/metrics/cm_connection_count`);
    expect(r.json.items).toEqual([{ describedObject: { kind: 'Namespace', apiVersion: 'v1', name: 'shop' }, metricName: 'cm_connection_count', timestamp: expect.any(String), window: 1, value: '100', selector: null }]);
  });

  it('says why an object cannot be resolved without Kubernetes', async () => {
    const r = await get(`${api}${CM}/v1beta2/namespaces/shop/services/nope/cm_connection_count`);
    expect(r.status).toBe(404);
    expect(r.json.message).toBe('services nope in namespace shop: in --standalone mode there is no Kubernetes API to read its selector; an object named N is taken to select the pods labelled app.kubernetes.io/name=N or app=N, and no reporting pod in shop carries such a label');
  });
});

describe('external metrics', () => {
  it('matches names case-insensitively, filters by the series labels and de-duplicates (freshest wins)', async () => {
    const r = await get(`${api}${EM}/namespaces/shop/cm_queue_depth?labelSelector=queue%3Dorders`);
    expect(r.status).toBe(200);
    expect(r.json.kind).toBe('ExternalMetricValueList');
    expect(r.json.apiVersion).toBe('external.metrics.k8s.io/v1beta1');
    expect(r.json.items).toEqual([{ metricName: 'cm_Queue_Depth', metricLabels: { queue: 'orders' }, timestamp: expect.any(String), window: 1, value: '9' }]);
    const both = await get(`${api}${EM}/namespaces/shop/cm_queue_depth`);
    expect(both.json.items.map((i: { value: string }) => i.value).sort()).toEqual(['3', '9']);
  });
});

describe('errors are metav1.Status with the reason', () => {
  const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

  it('400 for a malformed labelSelector, before looking at the metric', async () => {
    const r = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/no_such_metric?labelSelector=app+in+%28web`);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(r.json.message).toMatch(/^invalid labelSelector "app in \(web": /);
  });

  it('404 naming a metric that was never reported', async () => {
    const r = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/no_such_metric`);
    expect(r.json).toEqual(status(404, 'NotFound', 'the server could not find the metric no_such_metric for pods in namespace shop: it was never reported (no series of that name is held)'));
  });

  it('404 saying no pod matched', async () => {
    const r = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/cm_connection_count?labelSelector=app%3Dnone`);
    expect(r.json).toEqual(status(404, 'NotFound', 'the server could not find the metric cm_connection_count for pods in namespace shop: no pod matched the selector "app=none" (4 pod(s) in namespace shop report it)'));
  });

  it('404 saying since when a value is stale, and the stale value is never served', async () => {
    const old = Date.now() - 120_000;
    await reporter().hello({ namespace: 'stale', name: 'p1', labels: { app: 'a' } }).snapshot([{ name: 'cm_x', value: 5 }], { scrapeTimeMs: old });
    const r = await get(`${api}${CM}/v1beta2/namespaces/stale/pods/*/cm_x`);
    expect(r.status).toBe(404);
    expect(r.json.message).toBe(`the server could not find the metric cm_x for pods in namespace stale: stale since ${new Date(old + 15_000).toISOString()} (last sample at ${new Date(old).toISOString()}, values older than 15s are not served)`);
    const disc = await get(`${api}${CM}/v1beta2`);
    expect(disc.json.resources.map((x: { name: string }) => x.name)).not.toContain('pods/cm_x');
  });

  it('never serves NaN or Inf: such a series counts as missing', async () => {
    await reporter().hello({ namespace: 'nan', name: 'p1' }).snapshot([{ name: 'cm_nan', value: NaN }, { name: 'cm_inf', value: Infinity }, { name: 'cm_ok', value: 1 }]);
    for (const m of ['cm_nan', 'cm_inf']) {
      const r = await get(`${api}${CM}/v1beta2/namespaces/nan/pods/*/${m}`);
      expect(r.status).toBe(404);
      expect(r.json.message).toMatch(new RegExp(`^the server could not find the metric ${m} for pods in namespace nan: stale since \\S+ \\(the last value is (NaN|Infinity); NaN and ±Inf are never served\\)$`));
    }
    expect((await get(`${api}${CM}/v1beta2/namespaces/nan/pods/*/cm_ok`)).json.items[0].value).toBe('1');
  });

  it('one pod reporting 1e300 is left out of pods/*, the Service sum and external answers; its 404 says why', async () => {
    for (const [name, value] of [['web-1', 1], ['web-2', 2], ['web-bad', 1e300]] as const) {
      await reporter().hello({ namespace: 'huge', name, labels: { app: 'web' } }).snapshot([{ name: 'cm_big', labels: { pod: name }, value }]);
    }
    const pods = await get(`${api}${CM}/v1beta2/namespaces/huge/pods/*/cm_big`);
    expect(pods.status).toBe(200);
    expect(Object.fromEntries(pods.json.items.map((i: { describedObject: { name: string }; value: string }) => [i.describedObject.name, i.value]))).toEqual({ 'web-1': '1', 'web-2': '2' });
    const service = await get(`${api}${CM}/v1beta2/namespaces/huge/services/web/cm_big`);
    expect(service.json.items.map((i: { value: string }) => i.value)).toEqual(['3']);
    const external = await get(`${api}${EM}/namespaces/huge/cm_big`);
    expect(external.json.items.map((i: { metricLabels: { pod: string }; value: string }) => [i.metricLabels.pod, i.value]).sort()).toEqual([['web-1', '1'], ['web-2', '2']]);
    const bad = await get(`${api}${CM}/v1beta2/namespaces/huge/pods/web-bad/cm_big`);
    expect(bad.json).toEqual(status(404, 'NotFound', expect.stringMatching(/^the server could not find the metric cm_big for pod web-bad in namespace huge: not served: the last value \(at \S+\) cannot be a Kubernetes quantity: \|1e\+300\| is beyond what the HPA can hold \(at most 9223372036854775\.807\)$/)));
  });

  it('404 for an unsupported resource, 400 for a bad path, 405 for other methods, 404 for unknown groups', async () => {
    const r1 = await get(`${api}${CM}/v1beta2/namespaces/shop/ingresses.networking.k8s.io/x/cm_connection_count`);
    expect(r1.status).toBe(404);
    expect(r1.json.message).toContain('resource "ingresses.networking.k8s.io" is not supported');
    const r2 = await get(`${api}${CM}/v1beta2/namespaces/shop/cm_connection_count`);
    expect(r2.json).toMatchObject({ reason: 'BadRequest', code: 400 });
    expect(r2.json.message).toMatch(/^invalid request path/);
    const r3 = await get(`${api}${CM}/v1beta2/namespaces/shop/pods/*/cm_connection_count`, { method: 'POST' });
    expect(r3.json).toMatchObject({ reason: 'MethodNotAllowed', code: 405 });
    const r4 = await get(`${api}/apis/metrics.k8s.io/v1beta1`);
    expect(r4.status).toBe(404);
    expect(r4.json.kind).toBe('Status');
  });
});

describe('ingest', () => {
  it('replaces a pod\'s series with each snapshot and deletes them at once on goodbye', async () => {
    const r = reporter().hello({ namespace: 'life', name: 'p1' });
    await r.snapshot([{ name: 'cm_a', value: 1 }, { name: 'cm_b', value: 2 }]);
    await r.snapshot([{ name: 'cm_a', value: 3 }]);
    expect((await get(`${api}${CM}/v1beta2/namespaces/life/pods/p1/cm_a`)).json.items[0].value).toBe('3');
    expect((await get(`${api}${CM}/v1beta2/namespaces/life/pods/p1/cm_b`)).status).toBe(404);
    r.goodbye();
    expect((await r.endOfStream()).code).toBe(grpc.status.OK);
    expect((await get(`${api}${CM}/v1beta2/namespaces/life/pods/p1/cm_a`)).status).toBe(404);
  });

  it('refuses series over the per-pod limit, says so in the ack, and keeps the rest', async () => {
    const r = reporter().hello({ namespace: 'limits', name: 'p1' });
    const ack = await r.snapshot(Array.from({ length: 60 }, (_, i) => ({ name: `cm_s${i}`, value: i })));
    expect(ack).toMatchObject({ accepted: 50, refused: 10, reason: 'series limit per pod (50) reached' });
    expect((await get(`${api}${CM}/v1beta2/namespaces/limits/pods/p1/cm_s49`)).status).toBe(200);
    expect((await get(`${api}${CM}/v1beta2/namespaces/limits/pods/p1/cm_s50`)).status).toBe(404);
    const metrics = await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`);
    expect(metrics.text).toMatch(/metrics_relay_aggregator_rejected_reports_total\{reason="series_limit"\} 10/);
  });

  it('ends only the offending stream on invalid messages; its pod\'s data and other streams are untouched', async () => {
    const good = reporter().hello({ namespace: 'bad', name: 'good' });
    await good.snapshot([{ name: 'cm_v', value: 1 }]);
    const victim = reporter().hello({ namespace: 'bad', name: 'victim' });
    await victim.snapshot([{ name: 'cm_v', value: 2 }]);

    // A snapshot referencing an undefined id.
    victim.send({ snapshot: { seq: 9, status: 'OK', error: '', scrape_time_ms: Date.now(), defs: [], ids: [42], values: [1], timestamps_ms: [], pod_labels: null } } as never);
    expect(await victim.endOfStream()).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'snapshot 9: series id 42 is not defined on this stream' });

    // No Hello first.
    const noHello = reporter();
    noHello.send({ snapshot: { seq: 1, status: 'OK', error: '', scrape_time_ms: Date.now(), defs: [], ids: [], values: [], timestamps_ms: [], pod_labels: null } } as never);
    expect(await noHello.endOfStream()).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'the first message of a stream must be a Hello' });

    // An oversized message (limit 4 MiB).
    const big = reporter().hello({ namespace: 'bad', name: 'big' });
    await big.snapshot([{ name: 'cm_v', value: 3 }]);
    big.send({ snapshot: { seq: 2, status: 'OK', error: 'x'.repeat(5 * 1024 * 1024), scrape_time_ms: Date.now(), defs: [], ids: [], values: [], timestamps_ms: [], pod_labels: null } } as never);
    const end = await big.endOfStream();
    expect(end.code).toBe(grpc.status.RESOURCE_EXHAUSTED);

    const pods = await get(`${api}${CM}/v1beta2/namespaces/bad/pods/*/cm_v`);
    expect(Object.fromEntries(pods.json.items.map((i: { describedObject: { name: string }; value: string }) => [i.describedObject.name, i.value]))).toEqual({ good: '1', victim: '2', big: '3' });
    expect((await good.snapshot([{ name: 'cm_v', value: 4 }])).accepted).toBe(1);
    const metrics = await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`);
    expect(metrics.text).toMatch(/metrics_relay_aggregator_rejected_reports_total\{reason="invalid_message"\} 2/);
  });

  it('tells its message limit in every Ack; keeps an OK snapshot with an error and repeats the error in the 404 of a series cut', async () => {
    const cut = "snapshot trimmed: 812 series of families cm_big over the aggregator's 4194304-byte message limit";
    const r = reporter().hello({ namespace: 'trim', name: 'p1' });
    const other = reporter().hello({ namespace: 'trim', name: 'p2' });
    expect(await other.snapshot([{ name: 'cm_big', value: 5 }, { name: 'cm_v', value: 6 }])).toMatchObject({ accepted: 2, max_message_bytes: 4194304 });
    expect(await r.snapshot([{ name: 'cm_v', value: 1 }], { error: cut })).toMatchObject({ accepted: 1, refused: 0, max_message_bytes: 4194304 });
    expect((await get(`${api}${CM}/v1beta2/namespaces/trim/pods/p1/cm_v`)).json.items[0].value).toBe('1');
    const big = await get(`${api}${CM}/v1beta2/namespaces/trim/pods/p1/cm_big`);
    expect([big.status, big.json.message]).toEqual([404, `the server could not find the metric cm_big for pods in namespace trim: pod p1 does not report it; the pod's sidecar reports: ${cut}`]);
    const gone = await get(`${api}${CM}/v1beta2/namespaces/trim/pods/p1/cm_gone`);
    expect([gone.status, gone.json.message]).toEqual([404, `the server could not find the metric cm_gone for pod p1 in namespace trim: it was never reported (no series of that name is held); the pod's sidecar reports: ${cut}`]);
    // The other pod is untouched; once p1's snapshots are whole again, its 404 says nothing more.
    expect((await get(`${api}${CM}/v1beta2/namespaces/trim/pods/p2/cm_big`)).json.items[0].value).toBe('5');
    await r.snapshot([{ name: 'cm_v', value: 2 }]);
    expect((await get(`${api}${CM}/v1beta2/namespaces/trim/pods/p1/cm_big`)).json.message).toBe('the server could not find the metric cm_big for pods in namespace trim: pod p1 does not report it');
  });

  it('marks a pod stale at once when its sidecar reports the scrape breaker open', async () => {
    const r = reporter().hello({ namespace: 'breaker', name: 'p1' });
    await r.snapshot([{ name: 'cm_v', value: 1 }]);
    await r.snapshot([], { status: 'FAILED', error: 'connect ECONNREFUSED' });
    expect((await get(`${api}${CM}/v1beta2/namespaces/breaker/pods/p1/cm_v`)).status).toBe(200);
    const opened = Date.now();
    await r.snapshot([], { status: 'BREAKER_OPEN', error: 'scrape failed 5 times in a row: connect ECONNREFUSED' });
    const res = await get(`${api}${CM}/v1beta2/namespaces/breaker/pods/p1/cm_v`);
    expect(res.status).toBe(404);
    const m = /: stale since (\S+) \(the pod's sidecar reports its scrape breaker open: scrape failed 5 times in a row: connect ECONNREFUSED; last sample at (\S+)\)$/.exec(res.json.message);
    expect(m, res.json.message).not.toBeNull();
    // Stale since the report said so, not at some future time the last sample would have aged out.
    expect(Date.parse(m![1]!)).toBeGreaterThanOrEqual(opened - 1000);
    expect(Date.parse(m![1]!)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(m![2]!)).toBeLessThanOrEqual(Date.parse(m![1]!));
  });
});

describe('probes and OpenAPI', () => {
  it('serves probes on both ports and is ready once warmed up', async () => {
    await eventually(async () => ((await get(`${api}/readyz`)).status === 200 ? true : undefined));
    for (const base of [api, `http://127.0.0.1:${agg.ports['metrics']}`]) {
      for (const p of ['/healthz', '/livez', '/readyz']) expect((await get(`${base}${p}`)).text).toBe('ok');
    }
  });

  it('serves valid OpenAPI v2 and v3 documents', async () => {
    const v2 = await get(`${api}/openapi/v2`);
    expect(v2.json.swagger).toBe('2.0');
    expect(Object.keys(v2.json.paths)).toContain('/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{resource}/{name}/{metric}');
    const v3 = await get(`${api}/openapi/v3`);
    const url: string = v3.json.paths['apis/custom.metrics.k8s.io/v1beta2'].serverRelativeURL;
    const doc = await get(`${api}${url}`);
    expect(doc.json.openapi).toBe('3.0.0');
    for (const [, op] of Object.entries(doc.json.paths)) {
      const ref: string = (op as { get: { responses: { '200': { content: { 'application/json': { schema: { $ref: string } } } } } } }).get.responses['200'].content['application/json'].schema.$ref;
      expect(doc.json.components.schemas[ref.split('/').pop()!]).toBeDefined();
    }
  });
});
