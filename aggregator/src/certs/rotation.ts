import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { issueServingCert } from '../../../common/src/tls.js';

/**
 * The aggregator's own CA and serving certificate, and when to replace them. Pure apart from key generation:
 * `rotate()` takes the current state and the time and returns the next state, so the schedule is testable with
 * a fake clock. The Kubernetes side (Secret, Lease, caBundles) is kube/certificates.ts.
 *
 * Schedule (L = a lifetime, O = the overlap):
 * - a CA is replaced when at most L_ca/3 of it remains; the new one is trusted next to the old one (the
 *   published bundle holds both) and signs nothing for O, so every consumer learns it first;
 * - the serving certificate is re-issued when at most L_cert/3 remains, when its names change, or (the switch)
 *   once the newest CA has been trusted for O;
 * - an old CA leaves the bundle once the serving certificate signed by its successor is O old, so every replica
 *   has reloaded it. Expired CAs leave at once.
 */

export interface Authority {
  cert: string;
  key: string;
}

export interface Serving {
  cert: string;
  key: string;
}

export interface TlsState {
  /** Trusted CAs, newest first; each with its key (the newest signs, an older one may still be the signer). */
  authorities: Authority[];
  serving: Serving | undefined;
}

export interface RotationSettings {
  caValidityMs: number;
  certValidityMs: number;
  overlapMs: number;
  /** DNS names and IP addresses the serving certificate must carry. */
  hosts: string[];
  /** Prefix of the CAs' common names (each also gets its creation time, so two CAs never share a subject). */
  caName: string;
}

/** Checks a schedule can work: the switch and the drop both happen before the old CA expires. */
export function settingsProblem(s: Pick<RotationSettings, 'caValidityMs' | 'certValidityMs' | 'overlapMs'>): string | undefined {
  if (s.overlapMs <= 0) return 'the rotation overlap must be positive';
  if (2 * s.overlapMs > s.caValidityMs / 3) return `the rotation overlap (${s.overlapMs}ms) must be at most 1/6 of the CA validity (${s.caValidityMs}ms): the new CA is trusted for one overlap before it signs, and the old one stays trusted for another`;
  // NOTE: a certificate never outlives its CA; at most half keeps one issued by an outgoing CA clear of renewal.
  if (2 * s.certValidityMs > s.caValidityMs) return `the certificate validity (${s.certValidityMs}ms) must be at most half the CA validity (${s.caValidityMs}ms)`;
  return undefined;
}

// NOTE: certificates are backdated a minute for clock skew between the replicas, the kube-apiserver and the
// sidecars; `issuedAt` undoes that, so overlaps are measured from the real issue time.
const SKEW_MS = 60_000;

const validity = (pem: string) => {
  const x = new X509Certificate(pem);
  return { issuedAt: x.validFromDate.getTime() + SKEW_MS, notAfter: x.validToDate.getTime(), subject: x.subject };
};

/** The hosts a certificate names (DNS and IP SANs), sorted. */
export function hostsOf(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return san.split(', ').map((e) => e.replace(/^(DNS|IP Address):/, '')).filter((e) => e !== '').sort();
}

/** Which trusted CA signed the certificate (undefined: none of them). */
export function signerOf(cert: string, authorities: Authority[]): Authority | undefined {
  const x = new X509Certificate(cert);
  return authorities.find((a) => {
    const ca = new X509Certificate(a.cert);
    return x.checkIssued(ca) && x.verify(ca.publicKey);
  });
}

/** Joins the trusted CAs into one PEM bundle, newest first (what caBundle and ca.crt carry). */
export function bundleOf(state: TlsState): string {
  return state.authorities.map((a) => a.cert.trim()).join('\n') + '\n';
}

/**
 * Moves the state on to `now`. Returns the new state and what changed (empty: nothing). `mayStartSigning`
 * false holds back the switch to a new CA (e.g. while its bundle could not be published everywhere).
 */
export async function rotate(state: TlsState, now: number, s: RotationSettings, mayStartSigning = true): Promise<{ state: TlsState; changes: string[] }> {
  const changes: string[] = [];
  let authorities = state.authorities.filter((a) => {
    const alive = validity(a.cert).notAfter > now;
    if (!alive) changes.push(`dropped expired CA ${validity(a.cert).subject}`);
    return alive;
  });

  const newest = authorities[0];
  if (!newest || validity(newest.cert).notAfter - now <= s.caValidityMs / 3) {
    authorities = [await issueAuthority(s, now), ...authorities];
    changes.push(newest ? `new CA ${validity(authorities[0]!.cert).subject} (the previous one expires ${new Date(validity(newest.cert).notAfter).toISOString()})` : `new CA ${validity(authorities[0]!.cert).subject}`);
  }
  const head = authorities[0]!;
  const headTrustedLongEnough = authorities.length === 1 || (mayStartSigning && now - validity(head.cert).issuedAt >= s.overlapMs);

  let serving = state.serving;
  const signer = serving ? signerOf(serving.cert, authorities) : undefined;
  const why = !serving
    ? 'none yet'
    : !signer
      ? 'its CA is no longer trusted'
      : validity(serving.cert).notAfter - now <= s.certValidityMs / 3
        ? 'it expires soon'
        : hostsOf(serving.cert).join(',') !== [...s.hosts].sort().join(',')
          ? 'its names changed'
          : signer !== head && headTrustedLongEnough
            ? 'the new CA has been trusted for the overlap'
            : undefined;
  if (why) {
    // The newest CA signs once it has been trusted for the overlap; until then the current signer goes on.
    const by = headTrustedLongEnough || !signer ? head : signer;
    serving = await issueServing(s, by, now);
    changes.push(`new serving certificate from ${validity(by.cert).subject} (${why})`);
  }

  const servingSince = validity(serving!.cert).issuedAt;
  const servingSigner = signerOf(serving!.cert, authorities);
  authorities = authorities.filter((a, i) => {
    const keep = i === 0 || a === servingSigner || now - servingSince < s.overlapMs;
    if (!keep) changes.push(`dropped CA ${validity(a.cert).subject} (every replica serves a certificate of its successor)`);
    return keep;
  });
  return { state: { authorities, serving }, changes };
}

async function issueAuthority(s: RotationSettings, now: number): Promise<Authority> {
  const pems = await generate([{ name: 'commonName', value: `${s.caName}@${Math.floor(now / 1000)}` }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - SKEW_MS),
    notAfterDate: new Date(now + s.caValidityMs),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

function issueServing(s: RotationSettings, ca: Authority, now: number): Promise<Serving> {
  return issueServingCert(s.hosts, { notBefore: new Date(now - SKEW_MS), notAfter: new Date(Math.min(now + s.certValidityMs, validity(ca.cert).notAfter)) }, ca);
}
