// The cluster bench's fake pods: pod i is p-<i> in namespace bench (label app=bench), its app serving /metrics on
// its own loopback address, as pods have their own IPs. The page holds five cm_* series whose values change.
import type { Kind } from '../../common/src/proto.js';

export const NAMESPACE = 'bench';
export const APP_PORT = 8080;
/** What the HPA of the bench scales on (a gauge of the page). */
export const HPA_METRIC = 'cm_connection_count';

export function podName(i: number): string {
  return `p-${i}`;
}

/** 127.1.0.1, 127.1.0.2, ...: all of 127/8 is loopback on Linux, so each pod gets an address without setup. */
export function podAddress(i: number): string {
  if (i >= 250 * 256) throw new Error(`pod ${i}: no more than ${250 * 256} fake pods`);
  return `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

const FAMILIES = [
  { name: HPA_METRIC, type: 'gauge' },
  { name: 'cm_queue_depth', type: 'gauge' },
  { name: 'cm_inflight_requests', type: 'gauge' },
  { name: 'cm_requests_total', type: 'counter' },
  { name: 'cm_errors_total', type: 'counter' },
] as const;

/** Pod i's page at time nowMs: gauges that move every second, counters that grow. */
export function page(i: number, nowMs: number): string {
  const s = Math.floor(nowMs / 1000);
  const values = [(i + s) % 50, (i * 7 + s) % 10, (i + s * 3) % 20, s * 40 + i, s + (i % 3)];
  return FAMILIES.map((f, k) => `# TYPE ${f.name} ${f.type}\n${f.name} ${values[k]}\n`).join('');
}

/**
 * What a sidecar (or node agent) sends for that page: each gauge, each counter and the counter's per-second rate
 * (named without _total, over the default 60 s rate window).
 */
export function relayedSeries(): RelayedSeries[] {
  return FAMILIES.flatMap((f): RelayedSeries[] =>
    f.type === 'gauge'
      ? [{ name: f.name, kind: 'GAUGE', windowMs: 0, labels: {} }]
      : [{ name: f.name, kind: 'COUNTER', windowMs: 0, labels: {} }, { name: f.name.slice(0, -'_total'.length), kind: 'RATE', windowMs: 60_000, labels: {} }],
  );
}

interface RelayedSeries {
  name: string;
  kind: Kind;
  windowMs: number;
  labels: Record<string, string>;
}

/**
 * A v1 PodList (`kubectl get pods -o json` shape) of pods `indexes` bound to `nodeName`: annotated for
 * metrics-relay, Running, each with its own pod IP and its app's containerPort.
 */
export function podList(indexes: readonly number[], nodeName: string): object {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: indexes.map((i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName(i), namespace: NAMESPACE, uid: `uid-${i}`, labels: { app: 'bench' }, annotations: { 'metrics-relay.io/inject': 'true' } },
      spec: { nodeName, containers: [{ name: 'app', image: 'bench', ports: [{ containerPort: APP_PORT }] }] },
      status: { phase: 'Running', podIP: podAddress(i) },
    })),
  };
}
