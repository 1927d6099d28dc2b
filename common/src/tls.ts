import { readFileSync } from 'node:fs';
import { generate } from 'selfsigned';

export interface KeyPair {
  cert: string;
  key: string;
}

/**
 * The serving certificate: read from files when given, else a fresh self-signed one for `hosts`
 * (DNS names or IPs). Self-signed certificates are for --standalone and first starts; clients must skip
 * verification or pin them.
 */
export async function servingKeyPair(certFile: string | undefined, keyFile: string | undefined, hosts: string[]): Promise<KeyPair> {
  if (certFile && keyFile) return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  return issueServingCert(hosts, { notBefore: new Date(), notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000) });
}

/** A serving certificate (EC P-256) naming `hosts` (DNS names or IPs), signed by `ca`, else self-signed. */
export async function issueServingCert(hosts: string[], validity: { notBefore: Date; notAfter: Date }, ca?: KeyPair): Promise<KeyPair> {
  const altNames = hosts.map((h) => (/^[0-9.]+$/.test(h) || h.includes(':') ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }));
  const pems = await generate([{ name: 'commonName', value: hosts[0] ?? 'metrics-relay' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: validity.notBefore,
    notAfterDate: validity.notAfter,
    ...(ca ? { ca } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
