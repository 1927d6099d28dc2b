import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { TestPki, type Issued } from '../helpers/pki.js';

// cert-manager rotates the serving certificate in place: new connections get the new one, open ones stay up.

const pki = new TestPki();
const dir = mkdtempSync(join(tmpdir(), 'relay-rotate-'));
let ca: Issued;
let agg: RelayProcess;

function getOn(agent: Agent, port: number): Promise<{ status: number; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/livez', agent, ca: ca.cert }, (res) => {
      const serial = (res.socket as unknown as { getPeerCertificate(): { serialNumber: string } }).getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate a new TLS (h2) connection to the ingest port is given, verified against the CA. */
function ingestSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.cert, ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerX509Certificate()!.serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  ca = pki.ca('rotate-ca');
  const first = pki.leaf(ca, 'first', { server: ['127.0.0.1'] });
  copyFileSync(first.certFile, join(dir, 'tls.crt'));
  copyFileSync(first.keyFile, join(dir, 'tls.key'));
  agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--tls-cert-file', join(dir, 'tls.crt'), '--tls-key-file', join(dir, 'tls.key')]);
});

afterAll(async () => {
  await agg?.stop();
});

describe('serving certificate rotation', () => {
  it('serves the new certificate to new connections without dropping open ones', async () => {
    const port = agg.ports['api']!;
    const kept = new Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0 });
    const before = await getOn(kept, port);
    expect(before.status).toBe(200);

    const second = pki.leaf(ca, 'second', { server: ['127.0.0.1'] });
    copyFileSync(second.keyFile, join(dir, 'tls.key'));
    copyFileSync(second.certFile, join(dir, 'tls.crt'));
    const secondSerial = new X509Certificate(second.cert).serialNumber;
    await eventually(async () => ((await getOn(new Agent({ keepAlive: false, maxCachedSessions: 0 }), port)).serial === secondSerial ? true : undefined), 10_000, 200);

    // The kept-alive connection still answers, on the certificate it was opened with.
    const again = await getOn(kept, port);
    expect(again).toEqual({ status: 200, serial: before.serial });
    expect(agg.lines.some((l) => l.includes('serving certificate reloaded'))).toBe(true);
    kept.destroy();
    // The gRPC ingest port serves it too (to new connections).
    expect(await ingestSerial(agg.ports['ingest']!)).toBe(secondSerial);
  });
});
