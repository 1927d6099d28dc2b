// One client process of the scale soak (scale.ts): holds `count` ingest streams open as sidecars do (one TLS
// connection each, a Hello, then a snapshot of `series` gauges every `interval` ms, started at a random offset),
// and prints its counts as one JSON line on stdout every second. Each value is its sample time in ms, so whoever
// reads it from the API knows its age. Stops on SIGTERM.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadIngest, type WireAck, type WireReportRequest } from '../../common/src/proto.js';

const [target, caFile, countArg, firstArg, intervalArg, seriesArg, podsPerAppArg] = process.argv.slice(2);
const count = Number(countArg);
const first = Number(firstArg);
const intervalMs = Number(intervalArg);
const series = Number(seriesArg);
const podsPerApp = Number(podsPerAppArg);

const { Client } = loadIngest();
const credentials = grpc.credentials.createSsl(readFileSync(caFile!));
const counts = { open: 0, sent: 0, acked: 0, ended: 0 };
const timers: NodeJS.Timeout[] = [];
const clients: { close(): void }[] = [];

for (let i = 0; i < count; i++) {
  const p = first + i;
  // NOTE: one connection per stream (a local subchannel pool), as separate sidecar processes have.
  const client = new Client(target!, credentials, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'localhost' }) as unknown as {
    report(): grpc.ClientDuplexStream<WireReportRequest, WireAck>;
    close(): void;
  };
  clients.push(client);
  const stream = client.report();
  const app = `app-${Math.floor(p / podsPerApp)}`;
  let seq = 0;
  stream.on('data', () => counts.acked++);
  stream.on('error', () => counts.ended++);
  stream.write({ hello: { pod: { namespace: 'scale', name: `pod-${p}`, uid: `uid-${p}`, labels: { app, pod: String(p) } }, interval_ms: intervalMs, agent: 'bench' } } as WireReportRequest);
  counts.open++;
  const ids = Array.from({ length: series }, (_, k) => k);
  const send = (): void => {
    const now = Date.now();
    seq++;
    stream.write({
      snapshot: {
        seq, status: 'OK', error: '', scrape_time_ms: now, ids, values: ids.map(() => now), timestamps_ms: [], pod_labels: null,
        defs: seq === 1 ? ids.map((k) => ({ id: k, name: `cm_s${k}`, labels: { app }, kind: 'GAUGE', window_ms: 0 })) : [],
      },
    } as unknown as WireReportRequest);
    counts.sent++;
  };
  // Jittered start: sidecars do not scrape in step.
  timers.push(setTimeout(() => {
    send();
    timers.push(setInterval(send, intervalMs));
  }, Math.random() * intervalMs));
}

const report = setInterval(() => process.stdout.write(`${JSON.stringify(counts)}\n`), 1000);
process.on('SIGTERM', () => {
  clearInterval(report);
  for (const t of timers) clearTimeout(t);
  for (const c of clients) c.close();
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  process.exit(0);
});
