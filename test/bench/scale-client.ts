// One client process of stream-clients.ts: holds `count` ingest streams open as sidecars do (one TLS connection
// each, a Hello, then a snapshot of the spec's series every `intervalMs`, started at a random offset), and prints its
// counts as one JSON line on stdout every second. Each value is its sample time in ms, so whoever reads it from the
// API knows its age. Stops on SIGTERM.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadIngest, type WireAck, type WireReportRequest } from '../../common/src/proto.js';
import type { StreamClientSpec } from './stream-clients.js';

const spec = JSON.parse(process.argv[2]!) as StreamClientSpec;

const { Client } = loadIngest();
const credentials = grpc.credentials.createSsl(readFileSync(spec.caFile));
const counts = { open: 0, sent: 0, acked: 0, ended: 0 };
const timers: NodeJS.Timeout[] = [];
const clients: { close(): void }[] = [];

for (let i = 0; i < spec.count; i++) {
  const p = spec.first + i;
  // NOTE: one connection per stream (a local subchannel pool), as separate sidecar processes have.
  const client = new Client(spec.target, credentials, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'localhost' }) as unknown as {
    report(): grpc.ClientDuplexStream<WireReportRequest, WireAck>;
    close(): void;
  };
  clients.push(client);
  const stream = client.report();
  const fill = (labels: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, v.replaceAll('{p}', String(p)).replaceAll('{app}', String(Math.floor(p / spec.podsPerApp)))]));
  let seq = 0;
  stream.on('data', () => counts.acked++);
  stream.on('error', () => counts.ended++);
  stream.write({ hello: { pod: { namespace: spec.namespace, name: `${spec.podPrefix}${p}`, uid: `uid-${p}`, labels: fill(spec.podLabels) }, interval_ms: spec.intervalMs, agent: 'bench' } } as WireReportRequest);
  counts.open++;
  const ids = spec.series.map((_, k) => k);
  const defs = spec.series.map((s, k) => ({ id: k, name: s.name, labels: fill(s.labels), kind: s.kind, window_ms: s.windowMs }));
  const send = (): void => {
    const now = Date.now();
    seq++;
    stream.write({
      snapshot: { seq, status: 'OK', error: '', scrape_time_ms: now, ids, values: ids.map(() => now), timestamps_ms: [], pod_labels: null, defs: seq === 1 ? defs : [] },
    } as unknown as WireReportRequest);
    counts.sent++;
  };
  // Jittered start: sidecars do not scrape in step.
  timers.push(setTimeout(() => {
    send();
    timers.push(setInterval(send, spec.intervalMs));
  }, Math.random() * spec.intervalMs));
}

const report = setInterval(() => process.stdout.write(`${JSON.stringify(counts)}\n`), 1000);
process.on('SIGTERM', () => {
  clearInterval(report);
  for (const t of timers) clearTimeout(t);
  for (const c of clients) c.close();
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  process.exit(0);
});
