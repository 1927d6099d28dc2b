import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** Test certificates made with openssl in a temporary directory (EC P-256, one day). */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'relay-pki-'));

  /** A self-signed CA. */
  ca(name: string): Issued {
    const keyFile = join(this.dir, `${name}.key`);
    const certFile = join(this.dir, `${name}.crt`);
    this.genKey(keyFile);
    this.openssl(['req', '-x509', '-new', '-key', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return this.read(certFile, keyFile);
  }

  /** A leaf issued by `ca`: a client cert (CN, O=groups) or a server cert (DNS/IP SANs). */
  leaf(ca: Issued, name: string, opts: { cn?: string; groups?: string[]; server?: string[]; eku?: 'clientAuth' | 'serverAuth' } = {}): Issued {
    const keyFile = join(this.dir, `${name}.key`);
    const certFile = join(this.dir, `${name}.crt`);
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    this.genKey(keyFile);
    const subj = `/CN=${opts.cn ?? name}${(opts.groups ?? []).map((g) => `/O=${g}`).join('')}`;
    this.openssl(['req', '-new', '-key', keyFile, '-out', csr, '-subj', subj]);
    const eku = opts.eku ?? (opts.server ? 'serverAuth' : 'clientAuth');
    const sans = (opts.server ?? []).map((h) => (/^[0-9.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${eku}\n${sans ? `subjectAltName=${sans}\n` : ''}`);
    this.openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', ext]);
    return this.read(certFile, keyFile);
  }

  private genKey(file: string): void {
    this.openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  }

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private read(certFile: string, keyFile: string): Issued {
    return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  }
}
