import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ApiError } from '../errors.js';

/** Who is asking, as the kube-apiserver told us (front proxy) or as a token or certificate says. */
export interface UserInfo {
  name: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/** The request-header (front-proxy) trust settings: ConfigMap kube-system/extension-apiserver-authentication or flags. */
export interface RequestHeaderConfig {
  /** PEM bundle that must have issued the front proxy's client certificate. */
  caPem: string;
  /** Allowed client certificate CNs; empty means any CN. */
  allowedNames: string[];
  usernameHeaders: string[];
  uidHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

/** What the authenticator trusts right now (it may rotate: read on every request). */
export interface AuthnSettings {
  requestHeader?: RequestHeaderConfig;
  /** PEM bundle for ordinary client-certificate users (--client-ca-file / ConfigMap client-ca-file). */
  clientCaPem?: string;
}

/** Validates a bearer token (TokenReview); undefined when the token is not valid. Throws ApiError 503 when it cannot tell. */
export type TokenReviewer = (token: string) => Promise<UserInfo | undefined>;

const unauthorized = (why: string): ApiError => Object.assign(new ApiError(401, 'Unauthorized', 'Unauthorized'), { why });
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/**
 * Authenticates API requests like the Go DelegatingAuthenticator: front proxy (client certificate issued by the
 * request-header CA with an allowed CN, then X-Remote-* headers), else a client certificate from the client CA,
 * else a bearer token through TokenReview. `system:authenticated` is appended. No identity, or a certificate that
 * fails verification, is a 401 (X-Remote-* headers are never trusted without the certificate).
 */
export class Authenticator {
  private parsed = new Map<string, X509Certificate[]>();

  constructor(
    private readonly settings: () => AuthnSettings,
    private readonly tokenReview: TokenReviewer | undefined,
  ) {}

  async authenticate(req: IncomingMessage): Promise<UserInfo> {
    const s = this.settings();
    const chain = peerChain(req.socket as TLSSocket);
    if (chain.length > 0) {
      if (s.requestHeader && this.verify(chain, s.requestHeader.caPem)) {
        const cn = commonName(chain[0]!);
        if (s.requestHeader.allowedNames.length > 0 && !s.requestHeader.allowedNames.includes(cn)) {
          throw unauthorized(`x509: subject with cn=${cn} is not in the allowed list`);
        }
        const user = fromHeaders(req, s.requestHeader);
        if (user) return withAuthenticated(user);
        // A front-proxy certificate without a user header: fall through like Go (abstain).
      } else if (s.clientCaPem && this.verify(chain, s.clientCaPem)) {
        return withAuthenticated({ name: commonName(chain[0]!), uid: '', groups: organizations(chain[0]!), extra: {} });
      } else {
        throw unauthorized('x509: certificate signed by unknown authority (or not valid for client authentication)');
      }
    }
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && this.tokenReview) {
      const user = await this.tokenReview(auth.slice('Bearer '.length).trim());
      if (user) return withAuthenticated(user);
      throw unauthorized('invalid bearer token');
    }
    throw unauthorized('no client certificate and no bearer token');
  }

  /** True when the leaf chains to a CA of the bundle, is within its validity and may be used for client auth. */
  private verify(chain: X509Certificate[], caPem: string): boolean {
    const roots = this.roots(caPem);
    const now = Date.now();
    const leaf = chain[0]!;
    const eku = leaf.keyUsage;
    if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) return false;
    // Walk up the presented chain until a cert is issued by one of the roots.
    let cert = leaf;
    for (let depth = 0; depth < 5; depth++) {
      if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return false;
      if (roots.some((r) => cert.checkIssued(r) && cert.verify(r.publicKey) && now >= Date.parse(r.validFrom) && now <= Date.parse(r.validTo))) return true;
      const parent = chain.find((c) => c !== cert && cert.checkIssued(c) && cert.verify(c.publicKey) && c.ca);
      if (!parent) return false;
      cert = parent;
    }
    return false;
  }

  private roots(pem: string): X509Certificate[] {
    let r = this.parsed.get(pem);
    if (!r) {
      r = splitPem(pem).map((p) => new X509Certificate(p));
      if (this.parsed.size > 8) this.parsed.clear();
      this.parsed.set(pem, r);
    }
    return r;
  }
}

export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function peerChain(socket: TLSSocket): X509Certificate[] {
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const out: X509Certificate[] = [];
  let c = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

function commonName(cert: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
}

function organizations(cert: X509Certificate): string[] {
  return [...cert.subject.matchAll(/(?:^|\n)O=([^\n]*)/g)].map((m) => m[1]!);
}

/** X-Remote-* per the Go requestheader authenticator: first non-empty user, every group line, extras unescaped. */
function fromHeaders(req: IncomingMessage, cfg: RequestHeaderConfig): UserInfo | undefined {
  const h = req.headersDistinct;
  const first = (names: string[]) => {
    for (const n of names) for (const v of h[n.toLowerCase()] ?? []) if (v !== '') return v;
    return '';
  };
  const name = first(cfg.usernameHeaders);
  if (name === '') return undefined;
  const groups: string[] = [];
  for (const n of cfg.groupHeaders) for (const v of h[n.toLowerCase()] ?? []) if (v !== '') groups.push(v);
  const extra: Record<string, string[]> = {};
  for (const prefix of cfg.extraHeaderPrefixes.map((p) => p.toLowerCase())) {
    for (const [header, values] of Object.entries(h)) {
      if (!header.startsWith(prefix) || !values) continue;
      let key = header.slice(prefix.length).toLowerCase();
      try {
        key = decodeURIComponent(key);
      } catch {
        continue;
      }
      (extra[key] ??= []).push(...values);
    }
  }
  return { name, uid: first(cfg.uidHeaders), groups, extra };
}

function withAuthenticated(u: UserInfo): UserInfo {
  return u.groups.includes('system:authenticated') ? u : { ...u, groups: [...u.groups, 'system:authenticated'] };
}
