import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startRelay, type RelayProcess } from '../helpers/processes.js';
import { TestReporter } from '../helpers/ingest-client.js';
import { get } from '../helpers/http.js';
import { loadIngest, type WireAck, type WireReportRequest } from '../../common/src/proto.js';
import { prng } from '../helpers/prng.js';

// Seeded, bounded abuse of both ports: random bytes, and valid messages with random mutations. The aggregator
// must stay up and keep serving correct values to a legitimate sidecar throughout.

const SEED = 20261122;
const ROUNDS = 150;
let agg: RelayProcess;
let legit: TestReporter;

const rnd = prng(SEED);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));

async function servedValue(): Promise<string | undefined> {
  const r = await get(`https://127.0.0.1:${agg.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/fuzz/pods/legit/cm_v`);
  return r.status === 200 ? r.json.items[0].value : undefined;
}

beforeAll(async () => {
  agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--max-reports-per-second', '1000']);
  legit = new TestReporter(`127.0.0.1:${agg.ports['ingest']}`).hello({ namespace: 'fuzz', name: 'legit' });
  await legit.snapshot([{ name: 'cm_v', value: 42 }]);
});

afterAll(async () => {
  legit?.close();
  expect(await agg?.stop()).toBe(0);
});

describe('fuzzing', () => {
  it('random bytes at the HTTPS and gRPC ports', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const port = i % 2 === 0 ? agg.ports['api']! : agg.ports['ingest']!;
      const payload = bytes(1 + Math.floor(rnd() * 2048));
      await new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.end(payload));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.setTimeout(2000, () => s.destroy());
        s.resume();
      });
    }
    expect(agg.child.exitCode).toBeNull();
    expect(await servedValue()).toBe('42');
  });

  it('mutated Report messages on real gRPC streams', async () => {
    const { service } = loadIngest();
    const method = service['Report'] as grpc.MethodDefinition<WireReportRequest, WireAck>;
    const hello = method.requestSerialize({ hello: { pod: { namespace: 'fuzz', name: 'victim', uid: '', labels: {} }, interval_ms: 1000, agent: 'fuzz' } } as WireReportRequest);
    const snapshot = method.requestSerialize({
      snapshot: { seq: 1, status: 'OK', error: '', scrape_time_ms: Date.now(), defs: [{ id: 0, name: 'cm_v', labels: { a: 'b' }, kind: 'GAUGE', window_ms: 0 }], ids: [0], values: [1], timestamps_ms: [], pod_labels: null },
    } as unknown as WireReportRequest);
    const client = new grpc.Client(`127.0.0.1:${agg.ports['ingest']}`, grpc.credentials.createInsecure());
    let ended = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const call = client.makeBidiStreamRequest(method.path, (b: Buffer) => b, method.responseDeserialize);
      const done = new Promise<void>((resolve) => {
        call.on('error', () => (ended++, resolve()));
        call.on('end', () => resolve());
        call.on('data', () => undefined);
        setTimeout(resolve, 500);
      });
      const mutated = Buffer.from(snapshot);
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) mutated[Math.floor(rnd() * mutated.length)] = Math.floor(rnd() * 256);
      call.write(rnd() < 0.7 ? hello : bytes(20));
      call.write(rnd() < 0.5 ? mutated : bytes(1 + Math.floor(rnd() * 200)));
      await done;
      call.cancel();
    }
    client.close();
    expect(ended).toBeGreaterThan(0); // the abuse was noticed, stream by stream
    expect(agg.child.exitCode).toBeNull();
    expect((await legit.snapshot([{ name: 'cm_v', value: 43 }])).accepted).toBe(1);
    expect(await servedValue()).toBe('43');
    const metrics = await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`);
    expect(metrics.text).toMatch(/metrics_relay_aggregator_rejected_reports_total\{reason="invalid_message"\} [1-9]/);
  });
});
