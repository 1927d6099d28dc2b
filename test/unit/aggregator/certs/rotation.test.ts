import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { bundleOf, hostsOf, rotate, settingsProblem, signerOf, type RotationSettings, type TlsState } from '../../../../aggregator/src/certs/rotation.js';

// The managed-TLS schedule on a fake clock: lifetimes CA 90s, certificate 40s, overlap 10s (the e2e test's).

const S: RotationSettings = { caValidityMs: 90_000, certValidityMs: 40_000, overlapMs: 10_000, hosts: ['metrics-relay.ns.svc', '127.0.0.1'], caName: 'metrics-relay-ca' };
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const cn = (pem: string) => new X509Certificate(pem).subject.replace(/^CN=/, '');

async function at(state: TlsState, seconds: number, settings = S, mayStartSigning = true) {
  return rotate(state, T0 + seconds * 1000, settings, mayStartSigning);
}

describe('managed TLS schedule', () => {
  it('starts with one CA and a serving certificate it signed, for exactly the configured hosts', async () => {
    const { state, changes } = await at({ authorities: [], serving: undefined }, 0);
    expect(changes).toEqual([`new CA CN=metrics-relay-ca@${T0 / 1000}`, `new serving certificate from CN=metrics-relay-ca@${T0 / 1000} (none yet)`]);
    expect(state.authorities).toHaveLength(1);
    expect(signerOf(state.serving!.cert, state.authorities)).toBe(state.authorities[0]);
    expect(hostsOf(state.serving!.cert)).toEqual(['127.0.0.1', 'metrics-relay.ns.svc']);
    const x = new X509Certificate(state.serving!.cert);
    expect(x.ca).toBe(false);
    expect(new X509Certificate(state.authorities[0]!.cert).ca).toBe(true);
    expect(x.validToDate.getTime()).toBe(T0 + 40_000);
    // Nothing to do a moment later.
    expect((await at(state, 5)).changes).toEqual([]);
  });

  it('walks a full CA rotation with an overlap: trust first, then sign, then forget', async () => {
    let { state } = await at({ authorities: [], serving: undefined }, 0);
    const ca1 = state.authorities[0]!;

    // 27s and 54s: the certificate has a third of its life left and is re-issued by the same CA; the bundle is
    // unchanged. The second one ends with its CA (90s), not 40s later.
    let r = await at(state, 27);
    expect(r.changes).toEqual([`new serving certificate from CN=${cn(ca1.cert)} (it expires soon)`]);
    expect(bundleOf(r.state)).toBe(bundleOf(state));
    r = await at(r.state, 54);
    expect(r.changes).toEqual([`new serving certificate from CN=${cn(ca1.cert)} (it expires soon)`]);
    expect(new X509Certificate(r.state.serving!.cert).validToDate.getTime()).toBe(T0 + 90_000);
    state = r.state;

    // 60s: the CA has a third left: a second CA is trusted next to it, but the first one still signs.
    r = await at(state, 60);
    expect(r.changes).toEqual([expect.stringMatching(/^new CA CN=metrics-relay-ca@\d+ \(the previous one expires /)]);
    expect(r.state.authorities.map((a) => cn(a.cert))).toEqual([`metrics-relay-ca@${T0 / 1000 + 60}`, cn(ca1.cert)]);
    expect(r.state.serving).toBe(state.serving);
    expect(bundleOf(r.state).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    state = r.state;
    const ca2 = state.authorities[0]!;
    expect((await at(state, 69)).changes).toEqual([]);

    // 70s: the new CA has been trusted for the overlap: it signs the serving certificate; both stay trusted.
    r = await at(state, 70);
    expect(r.changes).toEqual([`new serving certificate from CN=${cn(ca2.cert)} (the new CA has been trusted for the overlap)`]);
    expect(signerOf(r.state.serving!.cert, r.state.authorities)).toBe(ca2);
    expect(r.state.authorities).toHaveLength(2);
    state = r.state;
    expect((await at(state, 79)).changes).toEqual([]);

    // 80s: every replica has had the overlap to load the new certificate: the first CA leaves the bundle.
    r = await at(state, 80);
    expect(r.changes).toEqual([`dropped CA CN=${cn(ca1.cert)} (every replica serves a certificate of its successor)`]);
    expect(r.state.authorities).toEqual([ca2]);
    expect(r.state.serving).toBe(state.serving);
  });

  it('holds back the switch while the new bundle could not be published', async () => {
    let { state } = await at({ authorities: [], serving: undefined }, 0);
    state = (await at(state, 27)).state;
    state = (await at(state, 54)).state;
    state = (await at(state, 60)).state;
    const held = await at(state, 75, S, false);
    expect(held.changes).toEqual([]);
    expect(signerOf(held.state.serving!.cert, held.state.authorities)).toBe(state.authorities[1]);
    expect((await at(state, 75)).changes).toEqual([expect.stringContaining('(the new CA has been trusted for the overlap)')]);
  });

  it('re-issues when the hosts change, and replaces everything after a long outage', async () => {
    const { state } = await at({ authorities: [], serving: undefined }, 0);
    const renamed = await at(state, 1, { ...S, hosts: ['other.ns.svc'] });
    expect(renamed.changes).toEqual([expect.stringContaining('(its names changed)')]);
    expect(hostsOf(renamed.state.serving!.cert)).toEqual(['other.ns.svc']);

    const later = await at(state, 1000);
    expect(later.changes[0]).toBe(`dropped expired CA CN=${cn(state.authorities[0]!.cert)}`);
    expect(later.changes).toContain(`new serving certificate from CN=metrics-relay-ca@${T0 / 1000 + 1000} (its CA is no longer trusted)`);
    expect(later.state.authorities).toHaveLength(1);
  });

  it('refuses schedules that cannot overlap', () => {
    expect(settingsProblem(S)).toBeUndefined();
    expect(settingsProblem({ ...S, overlapMs: 20_000 })).toBe('the rotation overlap (20000ms) must be at most 1/6 of the CA validity (90000ms): the new CA is trusted for one overlap before it signs, and the old one stays trusted for another');
    expect(settingsProblem({ ...S, certValidityMs: 60_000 })).toBe('the certificate validity (60000ms) must be at most half the CA validity (90000ms)');
    expect(settingsProblem({ ...S, overlapMs: 0 })).toBe('the rotation overlap must be positive');
  });
});
