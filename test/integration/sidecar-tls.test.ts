import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIngest, type WireAck, type WireReportRequest } from '../../common/src/proto.js';
import { startExampleApp, type ExampleApp } from '../../examples/app.js';
import { eventually, startRelay, type RelayProcess } from '../helpers/processes.js';
import { TestPki, type Issued } from '../helpers/pki.js';

// The sidecar against a TLS Ingest server written here, which records what arrives on the wire: the CA is
// checked, the token travels as `authorization: Bearer`, it is read again on each reconnect, and a new stream
// starts with a Hello and the latest snapshot with every definition.

interface Stream {
  authorization: string | undefined;
  messages: WireReportRequest[];
  call: grpc.ServerDuplexStream<WireReportRequest, WireAck>;
}

const pki = new TestPki();
let ca: Issued;
const streams: Stream[] = [];
let port = 0;
let app: ExampleApp;
const sidecars: RelayProcess[] = [];
const tokenFile = join(pki.dir, 'token');

/** A TLS Ingest server with this serving certificate, recording every stream into `streams`. */
async function startIngest(serving: Issued): Promise<{ port: number }> {
  const srv = new grpc.Server();
  srv.addService(loadIngest().service, {
    report(call: grpc.ServerDuplexStream<WireReportRequest, WireAck>) {
      const s: Stream = { authorization: call.metadata.get('authorization')[0] as string | undefined, messages: [], call };
      streams.push(s);
      call.on('data', (m: WireReportRequest) => {
        s.messages.push(m);
        if (m.snapshot) call.write({ seq: m.snapshot.seq, accepted: m.snapshot.ids.length, refused: 0, reason: '', max_message_bytes: 0 });
        if (m.goodbye) call.end();
      });
      call.on('error', () => undefined);
    },
  });
  const p = await new Promise<number>((resolve, reject) =>
    srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.cert), private_key: Buffer.from(serving.key) }]), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  servers.push(srv);
  return { port: p };
}
const servers: grpc.Server[] = [];

beforeAll(async () => {
  ca = pki.ca('relay-ca');
  ({ port } = await startIngest(pki.leaf(ca, 'ingest', { server: ['127.0.0.1'] })));
  app = await startExampleApp();
  app.setConnections(3);
});

afterAll(async () => {
  for (const s of sidecars) await s.stop();
  for (const srv of servers) srv.forceShutdown();
  await app.close();
});

const sidecarArgs = (caFile: string, pod: string, to = port) => [
  'sidecar', '--target', `http://127.0.0.1:${app.port}/metrics`, '--aggregator', `127.0.0.1:${to}`, '--ca-file', caFile, '--token-file', tokenFile,
  '--interval', '500ms', '--pod-name', pod, '--pod-namespace', 'tls', '--pod-uid', 'uid-tls', '--metrics-port', '0', '--bind-address', '127.0.0.1',
];
const of = (pod: string) => streams.filter((s) => s.messages[0]?.hello?.pod?.name === pod);

describe('TLS and the ServiceAccount token', () => {
  it('sends the token as a Bearer, re-reads it on reconnect, and starts every stream with Hello + full definitions', async () => {
    writeFileSync(tokenFile, 'token-one\n');
    const sidecar = await startRelay(sidecarArgs(ca.certFile, 'tls-1'));
    sidecars.push(sidecar);
    const first = await eventually(() => of('tls-1').find((s) => s.messages.filter((m) => m.snapshot).length >= 2), 10_000);
    expect(first.authorization).toBe('Bearer token-one');
    expect(first.messages[0]!.hello).toMatchObject({ pod: { namespace: 'tls', name: 'tls-1', uid: 'uid-tls' }, interval_ms: 500, agent: 'metrics-relay-sidecar' });
    const [s1, s2] = first.messages.filter((m) => m.snapshot).map((m) => m.snapshot!);
    expect(s1!.defs.map((d) => d.name).sort()).toEqual(['cm_connection_count', 'cm_queue_depth']);
    expect(s2!.defs).toEqual([]);
    expect(s2!.seq).toBe(s1!.seq + 1);

    // The kubelet rotated the token; the replica ends the stream (say, max connection age).
    writeFileSync(tokenFile, 'token-two\n');
    first.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'max connection age' });
    const second = await eventually(() => of('tls-1').find((s) => s !== first && s.messages.some((m) => m.snapshot)), 10_000);
    expect(second.authorization).toBe('Bearer token-two');
    expect(second.messages[0]!.hello).toBeDefined();
    const resent = second.messages[1]!.snapshot!;
    expect(resent.seq).toBe(1);
    expect(resent.defs.map((d) => d.name).sort()).toEqual(['cm_connection_count', 'cm_queue_depth']);
    expect(resent.values).toContain(3);

    const t0 = Date.now();
    expect(await sidecar.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(second.messages.at(-1)).toMatchObject({ body: 'goodbye' });
  });

  it('does not talk to a server whose certificate its CA did not sign', async () => {
    writeFileSync(tokenFile, 'token-one\n');
    const otherCa = pki.ca('other-ca');
    const sidecar = await startRelay(sidecarArgs(otherCa.certFile, 'tls-2'));
    sidecars.push(sidecar);
    await eventually(() => (sidecar.lines.some((l) => l.includes('cannot reach aggregator replica')) ? true : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(of('tls-2')).toEqual([]);
    expect(sidecar.lines.filter((l) => l.includes('cannot reach aggregator replica'))).toHaveLength(1); // logged once, not per retry
  });

  it('reads --ca-file again on every reconnect: a bundle that gained a rotated CA is trusted from the next dial', async () => {
    writeFileSync(tokenFile, 'token-one\n');
    // The replica already serves a certificate of the new CA; the sidecar's file still holds only the old one.
    const newCa = pki.ca('relay-ca-2');
    const rotated = await startIngest(pki.leaf(newCa, 'ingest-2', { server: ['127.0.0.1'] }));
    const bundleFile = join(pki.dir, 'bundle.crt');
    writeFileSync(bundleFile, ca.cert);
    const sidecar = await startRelay(sidecarArgs(bundleFile, 'tls-3', rotated.port));
    sidecars.push(sidecar);
    await eventually(() => (sidecar.lines.some((l) => l.includes('cannot reach aggregator replica')) ? true : undefined), 10_000);
    expect(of('tls-3')).toEqual([]);

    // The aggregator published both CAs (what the projected ConfigMap holds during an overlap).
    writeFileSync(bundleFile, `${newCa.cert}${ca.cert}`);
    const stream = await eventually(() => of('tls-3').find((s) => s.messages.some((m) => m.snapshot)), 10_000);
    expect(stream.messages[0]!.hello?.pod?.name).toBe('tls-3');
    // (logged on the stream's first Ack, which may reach this process after the snapshot reached the server)
    await eventually(() => (sidecar.lines.some((l) => l.includes('stream to aggregator replica up')) ? true : undefined), 10_000);
  });
});
