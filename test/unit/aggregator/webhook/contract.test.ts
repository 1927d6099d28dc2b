import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { decideInjection, SIDECAR_CONTAINER_NAME, type InjectionConfig, type InjectionDecision } from '../../../../aggregator/src/webhook/inject.js';
import { loadSidecarConfig, type SidecarConfig } from '../../../../sidecar/src/config.js';
import { parseDuration } from '../../../../common/src/duration.js';
import { servingKeyPair } from '../../../../common/src/tls.js';
import { injectionConfig, replicaSetPod, type Json } from '../../../helpers/webhook-fixtures.js';
import { prng } from '../../../helpers/prng.js';

// One contract: every pod the webhook injects gets a sidecar that starts, and every refusal says which
// annotation caused it.

let root: string;
let pem: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'webhook-contract-'));
  pem = (await servingKeyPair(undefined, undefined, ['relay-test'])).cert;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What the downward API gives a running pod. */
const FIELDS: Record<string, string> = { 'metadata.name': 'web-7d4b9c8f6b-x2x9q', 'metadata.namespace': 'shop', 'metadata.uid': '0b6f1c9e-2d4a-4f7e-9c1b-5a3e8d7f6c21' };

function injectedPod(pod: Json, d: InjectionDecision): Json {
  if (!d.inject) throw new Error(`expected an injection, got: ${d.reason}`);
  return jsonpatch.applyPatch(structuredClone(pod), d.patch as jsonpatch.Operation[], true, false).newDocument;
}

/**
 * Starts the injected sidecar's config the way the kubelet would run it: its volumes become files in a temp
 * dir (paths in args rewritten from the mount points), the downward-API env is filled in. The full loader.
 */
function asKubeletStarts(pod: Json): SidecarConfig {
  const c = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((x: Json) => x.name === SIDECAR_CONTAINER_NAME) as Json;
  const dir = mkdtempSync(join(root, 'pod-'));
  const mounts = c.volumeMounts as { name: string; mountPath: string }[];
  for (const m of mounts) {
    const volume = (pod.spec.volumes as Json[]).find((v) => v.name === m.name)!;
    const files: [string, string][] = [
      ...(volume.downwardAPI?.items ?? []).map((i: Json) => [i.path, 'app="web"\n']),
      ...(volume.projected?.sources ?? []).flatMap((s: Json) => [
        ...(s.serviceAccountToken ? [[s.serviceAccountToken.path, 'token']] : []),
        ...(s.configMap?.items ?? []).map((i: Json) => [i.path, pem]),
      ]),
    ];
    for (const [path, content] of files) {
      mkdirSync(dirname(join(dir, m.name, path)), { recursive: true });
      writeFileSync(join(dir, m.name, path), content);
    }
  }
  const local = (arg: string) => {
    const m = mounts.find((x) => arg.startsWith(`${x.mountPath}/`));
    return m ? join(dir, m.name, arg.slice(m.mountPath.length + 1)) : arg;
  };
  expect(c.args[0]).toBe('sidecar');
  const env = Object.fromEntries((c.env as Json[]).map((e) => [e.name, e.value ?? FIELDS[e.valueFrom.fieldRef.fieldPath]]));
  return loadSidecarConfig((c.args as string[]).slice(1).map(local), env);
}

function annotated(annotations: Record<string, string>): Json {
  const pod = replicaSetPod();
  pod.metadata.annotations = annotations;
  return pod;
}

describe('the reported cases', () => {
  it('metrics "1abc": a warning naming the annotation, in the sidecar\'s own words', () => {
    expect(decideInjection(annotated({ 'metrics-relay.io/metrics': '1abc' }), 'namespace', injectionConfig)).toMatchObject({
      inject: false,
      warning: 'metrics-relay: sidecar not injected: annotation metrics-relay.io/metrics: --metrics: "1abc" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)',
    });
  });

  it('interval "50ms": a warning naming the annotation', () => {
    expect(decideInjection(annotated({ 'metrics-relay.io/interval': '50ms' }), 'namespace', injectionConfig)).toMatchObject({
      inject: false,
      warning: 'metrics-relay: sidecar not injected: annotation metrics-relay.io/interval: --interval must be at least 100ms, got 50ms',
    });
  });

  it('interval "1h": injected without an invented --rate-window, and the sidecar starts with a 2h window', () => {
    const pod = annotated({ 'metrics-relay.io/interval': '1h' });
    const out = injectedPod(pod, decideInjection(pod, 'namespace', injectionConfig));
    const args = out.spec.containers[1].args as string[];
    expect(args.filter((a) => a.startsWith('--')).sort()).toEqual(['--aggregator', '--ca-file', '--interval', '--metrics', '--metrics-port', '--pod-labels-file', '--target', '--token-file']);
    expect(asKubeletStarts(out)).toMatchObject({ intervalMs: 3_600_000, rateWindowMs: 7_200_000, timeoutMs: 2_880_000, breakerResetMs: 10_800_000 });
  });
});

describe('refusals say where they come from', () => {
  it('webhook-only checks and the sidecar\'s checks in one warning', () => {
    const d = decideInjection(annotated({ 'metrics-relay.io/scheme': 'ftp', 'metrics-relay.io/interval': '50ms', 'metrics-relay.io/metrics': 'a.b' }), 'namespace', injectionConfig);
    expect(!d.inject && d.warning).toBe(
      'metrics-relay: sidecar not injected: annotation metrics-relay.io/scheme must be "http" or "https", got "ftp"; ' +
        'annotation metrics-relay.io/interval: --interval must be at least 100ms, got 50ms; ' +
        'annotation metrics-relay.io/metrics: --metrics: "a.b" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)',
    );
  });

  it('a value that does not parse is reported before the sidecar\'s other checks, as the sidecar does', () => {
    const d = decideInjection(annotated({ 'metrics-relay.io/interval': 'soon', 'metrics-relay.io/metrics': 'a.b' }), 'namespace', injectionConfig);
    expect(!d.inject && d.warning).toBe('metrics-relay: sidecar not injected: annotation metrics-relay.io/interval: --interval: "soon" is not a duration (e.g. 500ms, 5s, 1m)');
  });

  it('a bad default from the aggregator is named as the default of the annotation', () => {
    const d = decideInjection(replicaSetPod(), 'namespace', { ...injectionConfig, defaultInterval: '10ms' });
    expect(!d.inject && d.warning).toBe('metrics-relay: sidecar not injected: no annotation metrics-relay.io/interval, and the default: --interval must be at least 100ms, got 10ms');
  });

  it('a bad injection config is named as such', () => {
    const d = decideInjection(replicaSetPod(), 'namespace', { ...injectionConfig, aggregatorAddress: 'no-port' });
    expect(!d.inject && d.warning).toBe('metrics-relay: sidecar not injected: the injection config: --aggregator: "no-port" is not host:port');
  });

  it('what the sidecar accepts is injected: empty list items, spaces around names, a PEM in RELAY_CA_PEM', () => {
    const { caConfigMap: _omit, ...withPem } = injectionConfig;
    const pod = annotated({ 'metrics-relay.io/metrics': ' cm_a,, cm_b* ', 'metrics-relay.io/interval': '1m30s' });
    const out = injectedPod(pod, decideInjection(pod, 'namespace', { ...withPem, caPem: pem }));
    expect(asKubeletStarts(out)).toMatchObject({ metrics: ['cm_a', 'cm_b*'], intervalMs: 90_000, caPem: pem });
  });
});

// ---- property: generated annotation sets ----

const UNITS = ['ns', 'us', 'µs', 'ms', 's', 'm', 'h'];
const GARBAGE_DURATIONS = ['', ' ', '5', 's', '5x', '-1s', '1e3s', '1..5s', 'soon', '∞', '5 s', '1h-1m', '0x10s', '+5s', '5S', '--5s'];
const METRIC_ITEMS = ['cm_a', 'http_requests_total', 'a:b', '_x', 'cm_*', '?x', '*', 'cm_??', '1abc', 'a.b', 'a-b', 'é', 'a b', '-x', '', ' ', '\t', '--metrics'];
const PORTS = ['8080', '9100', '1', '65535', '0', '65536', 'http', '80.5', ' 80', '', '08080', '9091', '-1', '123456'];
const PATHS = ['/metrics', '/stats/prometheus', 'metrics', '/a b', '/x?y=1', '/%zz', '//x', '/é', '/\t', '/#f', '', '-/m', '/'];
const SCHEMES = ['http', 'https', 'HTTP', 'ftp', '', ' http'];
const INJECT = ['true', 'false', 'yes', '', 'True'];

function generate(r: () => number): { annotations: Record<string, string>; scope: 'pod' | 'namespace'; noContainerPort: boolean; config: InjectionConfig } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Each value is an ordinary one 60% of the time, so that injections and refusals both happen often.
  const usual = <T>(ordinary: readonly T[], wild: () => T): T => (r() < 0.6 ? pick(ordinary) : wild());
  const number = () => pick([0, 1, 5, 50, 99, 100, 101, 250, 999, 1500, 60, 86_400, 86_401, 1e6, 99_999_999]);
  const duration = (): string =>
    usual(['5s', '1s', '100ms', '1m', '1h', '24h', '30s', '2m30s'], () => {
      const kind = r();
      if (kind < 0.55) return `${number()}${pick(UNITS)}`;
      if (kind < 0.7) return `${pick([0, 1, 2, 25])}h${pick([0, 1, 30])}m${pick(['0', '0.5', '1.25', '59'])}s`;
      if (kind < 0.8) return `${pick(['0.', '.5', '1.5', '0.0001'])}${pick(UNITS)}`;
      return pick(GARBAGE_DURATIONS);
    });
  const metrics = (): string =>
    usual(['cm_*', 'cm_a,cm_b', 'http_requests_total', 'a:b, _x'], () => {
      const items = Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(METRIC_ITEMS));
      return `${pick(['', ' '])}${items.join(pick([',', ', ', ' ,']))}${pick(['', ' ', ','])}`;
    });
  const maybe = (key: string, value: () => string, p = 0.5) => (r() < p ? { [`metrics-relay.io/${key}`]: value() } : {});
  const annotations = {
    ...maybe('inject', () => pick(INJECT), 0.6),
    ...maybe('port', () => usual(['8080', '9100'], () => pick(PORTS))),
    ...maybe('path', () => usual(['/metrics'], () => pick(PATHS)), 0.35),
    ...maybe('scheme', () => usual(['http', 'https'], () => pick(SCHEMES)), 0.35),
    ...maybe('interval', duration, 0.7),
    ...maybe('metrics', metrics, 0.6),
  };
  const { caConfigMap: _omit, ...withoutConfigMap } = injectionConfig;
  const config = r() < 0.5 ? injectionConfig : { ...withoutConfigMap, caPem: pem, nativeSidecar: r() < 0.5 };
  return { annotations, scope: pick(['pod', 'namespace'] as const), noContainerPort: r() < 0.15, config };
}

describe('property: the webhook injects only what the sidecar accepts', () => {
  const CASES = 400;
  const BUDGET_MS = 20_000;

  it(`${CASES} generated annotation sets (seed from PROPERTY_SEED, else random; printed on failure)`, () => {
    const seed = Number(process.env['PROPERTY_SEED'] ?? Math.floor(Math.random() * 2 ** 32));
    const r = prng(seed);
    const counts = { injected: 0, refused: 0, skipped: 0 };
    const deadline = Date.now() + BUDGET_MS;
    for (let i = 0; i < CASES && Date.now() < deadline; i++) {
      const g = generate(r);
      try {
        const pod = annotated(g.annotations);
        if (g.noContainerPort) delete pod.spec.containers[0].ports;
        const d = decideInjection(pod, g.scope, g.config);
        const optIn = g.annotations['metrics-relay.io/inject'];
        if (d.inject) {
          counts.injected++;
          const cfg = asKubeletStarts(injectedPod(pod, d));
          // It runs what was asked for.
          expect(cfg.intervalMs).toBe(parseDuration(g.annotations['metrics-relay.io/interval'] ?? g.config.defaultInterval));
          expect(cfg.pod).toEqual({ name: FIELDS['metadata.name'], namespace: FIELDS['metadata.namespace'], uid: FIELDS['metadata.uid'] });
        } else if (d.warning !== undefined) {
          counts.refused++;
          expect(d.warning).toMatch(/^metrics-relay: sidecar not injected: /);
          const named = [...d.warning.matchAll(/metrics-relay\.io\/(inject|port|path|scheme|interval|metrics)\b/g)].map((m) => m[1]!);
          expect(named.length, d.warning).toBeGreaterThan(0);
          // Each annotation named is one the pod carries, or the port it lacks.
          for (const key of named) expect(key in Object.fromEntries(Object.keys(g.annotations).map((k) => [k.slice('metrics-relay.io/'.length), 1])) || key === 'port', d.warning).toBe(true);
          // A refusal of the interval or metrics is the sidecar's: the value alone fails its full loader.
          for (const key of ['interval', 'metrics'] as const) {
            const value = g.annotations[`metrics-relay.io/${key}`];
            if (value === undefined || !d.warning.includes(`annotation metrics-relay.io/${key}: `)) continue;
            expect(() => loadSidecarConfig(['--aggregator', 'a:1', '--pod-name', 'p', '--pod-namespace', 'ns', `--${key}`, value], {}), d.warning).toThrow(`--${key}`);
          }
        } else {
          counts.skipped++;
          expect(d.reason).toBe(optIn === 'false' ? 'opted out by annotation' : 'not opted in');
          if (optIn !== 'false') expect([g.scope, optIn]).toEqual(['pod', undefined]);
        }
      } catch (err) {
        throw new Error(`property failed with PROPERTY_SEED=${seed}, case ${i}: ${JSON.stringify(g.annotations)} scope=${g.scope} noContainerPort=${g.noContainerPort}: ${(err as Error).message}`);
      }
    }
    // The generator must reach both sides, or the property says nothing.
    const total = counts.injected + counts.refused + counts.skipped;
    expect(total, `seed ${seed}: only ${total} cases within ${BUDGET_MS}ms`).toBeGreaterThanOrEqual(100);
    expect(counts.injected / total, `seed ${seed}: ${JSON.stringify(counts)}`).toBeGreaterThan(0.1);
    expect(counts.refused / total, `seed ${seed}: ${JSON.stringify(counts)}`).toBeGreaterThan(0.1);
  });
});
