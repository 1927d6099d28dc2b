import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from '../helpers/processes.js';
import { startControlPlane, type ControlPlane } from './controlplane.js';
import { deploymentManifest, hpaManifest, kubectl, kubectlJson, LocalKubelet, podTokenFile, serviceAccountKubeconfig, TcpBalancer, until } from './harness.js';
import { startRelay, ROOT, type RelayProcess } from '../helpers/processes.js';

// Managed TLS on the real control plane, installed as a GitOps tool does it (helm template | kubectl apply
// --server-side) and with helm install. Short lifetimes force a full CA rotation while an HPA scales on values
// sidecars stream: the APIServices must never leave Available, the HPA must never fail to get its metric, every
// sidecar must reconnect at once to a replica serving the new CA's certificate, and re-applying the same render
// must change nothing.

const run = promisify(execFile);
const CHART = join(ROOT, 'charts/metrics-relay');
const NS = 'metrics-relay';
const APISERVICES = ['v1beta2.custom.metrics.k8s.io', 'v1beta1.custom.metrics.k8s.io'];
// CA 90s, certificate 40s, overlap 10s: a new CA at ~60s, it signs at ~70s, the old one leaves at ~80s.
const LIFETIMES = { caValidity: '90s', certValidity: '40s', overlap: '10s' };
const log = (l: string) => console.log(`[fleet] ${l}`);

let binDir: string;
let helm: string;

interface Cluster {
  cp: ControlPlane;
  dir: string;
  balancer: TcpBalancer;
  /** One TCP proxy per replica in front of its ingest port, so a test can cut every sidecar stream. */
  ingest: TcpBalancer[];
  aggregators: RelayProcess[];
  kubelets: LocalKubelet[];
  stopProjections: (() => void)[];
}

function values(apiPort: number): string[] {
  return [
    'outOfCluster.enabled=true', 'outOfCluster.address=127.0.0.1', `outOfCluster.apiPort=${apiPort}`,
    ...Object.entries(LIFETIMES).map(([k, v]) => `tls.managed.${k}=${v}`),
  ].flatMap((s) => ['--set', s]);
}

async function render(apiPort: number): Promise<string> {
  return (await run(helm, ['template', 'metrics-relay', CHART, '--namespace', NS, ...values(apiPort)])).stdout;
}

/** What the chart's Deployment would run, out of cluster (its NOTES print the same --managed-tls-* flags). */
function aggregatorArgs(kubeconfig: string): string[] {
  return [
    'aggregator', '--kubeconfig', kubeconfig, '--bind-address', '127.0.0.1', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--warmup', '3s',
    '--managed-tls-secret', `${NS}/metrics-relay-tls`, '--managed-tls-lease', 'metrics-relay-tls-leader',
    '--managed-tls-hosts', `metrics-relay.${NS}.svc,metrics-relay-ingest.${NS}.svc,127.0.0.1`,
    '--managed-tls-apiservices', APISERVICES.join(','), '--managed-tls-webhooks', 'metrics-relay-injector',
    '--managed-tls-ca-validity', LIFETIMES.caValidity, '--managed-tls-cert-validity', LIFETIMES.certValidity, '--managed-tls-overlap', LIFETIMES.overlap,
    '--inject-image', 'metrics-relay-sidecar:e2e', '--inject-aggregator', `metrics-relay-ingest.${NS}.svc:9443`, '--inject-ca-configmap', 'metrics-relay-ca',
  ];
}

/** Control plane, the chart applied by `install`, two aggregator replicas behind a Service-like balancer. */
async function startCluster(install: (apiPort: number, kubeconfig: string) => Promise<void>): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-relay-fleet-'));
  const cp = await startControlPlane({ binDir, workDir: dir, log });
  const c: Cluster = { cp, dir, balancer: undefined!, ingest: [], aggregators: [], kubelets: [], stopProjections: [] };
  c.balancer = new TcpBalancer(() => c.aggregators.filter((a) => a.child.exitCode === null).map((a) => a.ports['api']!));
  const apiPort = await c.balancer.start();
  await kubectl(cp.kubeconfig, ['create', 'namespace', NS]);
  await install(apiPort, cp.kubeconfig);
  const saKubeconfig = await serviceAccountKubeconfig(cp, join(dir, 'aggregator.kubeconfig'), NS, 'metrics-relay');
  for (let i = 0; i < 2; i++) {
    const agg = await startRelay(aggregatorArgs(saKubeconfig), { timeoutMs: 30_000 });
    c.aggregators.push(agg);
    const proxy = new TcpBalancer(() => [agg.ports['ingest']!]);
    await proxy.start();
    c.ingest.push(proxy);
  }
  return c;
}

async function stopCluster(c: Cluster | undefined): Promise<void> {
  if (!c) return;
  for (const s of c.stopProjections) s();
  for (const k of c.kubelets) await k.stop();
  for (const a of c.aggregators) await a.stop();
  for (const p of [c.balancer, ...c.ingest]) await p?.stop();
  await c.cp.stop();
  rmSync(c.dir, { recursive: true, force: true });
}

type Condition = { type: string; status: string; reason?: string; message?: string };
const apiServiceAvailable = async (kc: string): Promise<Record<string, Condition | undefined>> => {
  const list = await kubectlJson<{ items: { metadata: { name: string }; status?: { conditions?: Condition[] } }[] }>(kc, ['get', 'apiservices']);
  return Object.fromEntries(list.items.filter((a) => APISERVICES.includes(a.metadata.name)).map((a) => [a.metadata.name, a.status?.conditions?.find((x) => x.type === 'Available')]));
};
const waitAvailable = async (kc: string) => {
  for (const name of APISERVICES) await kubectl(kc, ['wait', '--for=condition=Available', `apiservice/${name}`, '--timeout=90s']);
};
const secretData = async (kc: string) => (await kubectlJson<{ data?: Record<string, string> }>(kc, ['get', 'secret', 'metrics-relay-tls', '-n', NS])).data ?? {};
/** The Secret once the elected replica has filled it (CA and serving certificate); it writes the caBundles after. */
const filledSecret = (kc: string) =>
  eventually(async () => {
    const d = await secretData(kc);
    return certsIn(d['ca.crt']).length > 0 && certsIn(d['tls.crt']).length > 0 ? d : undefined;
  }, 30_000, 500);
const certsIn = (b64: string | undefined) => (b64 ? Buffer.from(b64, 'base64').toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [] : []).map((p) => new X509Certificate(p));

/**
 * Plays the kubelet's projected volume: copies ConfigMap metrics-relay-ca of `ns` to `<dir>/<ns>/ca.crt` (an
 * atomic rename, as the kubelet swaps its symlink) once a second. The real kubelet takes up to about a minute;
 * the chart's default overlap (1h) covers that, this test's 10s covers this loop.
 */
function projectCaConfigMap(c: Cluster, ns: string): { file: string; ready: Promise<void> } {
  const dirOf = join(c.dir, 'projected', ns);
  mkdirSync(dirOf, { recursive: true });
  const file = join(dirOf, 'ca.crt');
  let last = '';
  let stopped = false;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const tick = async (): Promise<void> => {
    while (!stopped) {
      const cm = await kubectlJson<{ data?: Record<string, string> }>(c.cp.kubeconfig, ['get', 'configmap', 'metrics-relay-ca', '-n', ns]).catch(() => undefined);
      const pem = cm?.data?.['ca.crt'];
      if (pem && pem !== last) {
        writeFileSync(`${file}.tmp`, pem);
        renameSync(`${file}.tmp`, file);
        last = pem;
        resolveReady();
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void tick();
  c.stopProjections.push(() => (stopped = true));
  return { file, ready };
}

/** Open ingest streams on each replica (its self-metric). */
async function openStreams(c: Cluster): Promise<number[]> {
  return Promise.all(c.aggregators.map(async (a) => {
    const text = await (await fetch(`http://127.0.0.1:${a.ports['metrics']}/metrics`)).text();
    return Number(/^metrics_relay_aggregator_streams (\S+)$/m.exec(text)?.[1] ?? NaN);
  }));
}

beforeAll(async () => {
  binDir = inject('k8sBinDir');
  helm = join(binDir, 'helm');
});

describe('GitOps path: helm template | kubectl apply --server-side', () => {
  let c: Cluster;
  const ns = 'shop';
  let web: LocalKubelet;
  let caFile: string;

  beforeAll(async () => {
    c = await startCluster(async (apiPort, kc) => {
      await kubectl(kc, ['apply', '--server-side', '-f', '-'], await render(apiPort));
    });
  }, 600_000);
  afterAll(() => stopCluster(c));

  it('the elected replica fills the Secret and writes every caBundle: the APIServices become Available', async () => {
    const kc = c.cp.kubeconfig;
    await waitAvailable(kc);
    // The replica writes the Secret, then the caBundles; read until it shows both (the equalities below then tie
    // the APIServices and the webhook to it).
    const data = await filledSecret(kc);
    const [ca] = certsIn(data['ca.crt']);
    const [serving] = certsIn(data['tls.crt']);
    expect(ca!.ca).toBe(true);
    expect(serving!.verify(ca!.publicKey)).toBe(true);
    expect(serving!.subjectAltName).toContain(`DNS:metrics-relay.${NS}.svc`);
    for (const name of APISERVICES) expect((await kubectlJson<{ spec: { caBundle: string } }>(kc, ['get', 'apiservice', name])).spec.caBundle).toBe(data['ca.crt']);
    const hook = await kubectlJson<{ webhooks: { clientConfig: { caBundle: string } }[] }>(kc, ['get', 'mutatingwebhookconfiguration', 'metrics-relay-injector']);
    expect(hook.webhooks.map((w) => w.clientConfig.caBundle)).toEqual([data['ca.crt'], data['ca.crt']]);
    // Exactly one leader, named in the Lease.
    const holder = (await kubectlJson<{ spec: { holderIdentity?: string } }>(kc, ['get', 'lease', 'metrics-relay-tls-leader', '-n', NS])).spec.holderIdentity;
    expect(c.aggregators.filter((a) => a.lines.some((l) => l.includes('became the leader') && l.includes(holder!)))).toHaveLength(1);
    // Both replicas serve the certificate from the Secret.
    await until('both replicas serving it', async () => (c.aggregators.every((a) => a.lines.some((l) => l.includes('serving certificate loaded from the Secret'))) ? true : undefined), 30_000);
  });

  it('injecting a pod creates the CA ConfigMap in its namespace first, and mounts it instead of a frozen CA', async () => {
    const kc = c.cp.kubeconfig;
    await kubectl(kc, ['create', 'namespace', ns]);
    await kubectl(kc, ['label', 'namespace', ns, 'metrics-relay.io/inject=enabled']);
    await kubectl(kc, ['apply', '-f', '-'], deploymentManifest(ns, 'web', { app: 'web' }));
    const pod = await until('an injected pod', async () => (await kubectlJson<{ items: any[] }>(kc, ['get', 'pods', '-n', ns])).items[0]); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(pod.metadata.annotations['metrics-relay.io/injected']).toBe('true');
    const sidecar = pod.spec.containers.find((x: { name: string }) => x.name === 'metrics-relay-sidecar');
    expect(sidecar.args).toEqual(expect.arrayContaining(['--ca-file', '/var/run/secrets/metrics-relay/ca.crt']));
    expect(sidecar.env.map((e: { name: string }) => e.name)).not.toContain('RELAY_CA_PEM');
    const projected = pod.spec.volumes.find((v: { name: string }) => v.name === 'metrics-relay-token').projected.sources;
    expect(projected).toContainEqual({ configMap: { name: 'metrics-relay-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } });
    const cm = await kubectlJson<{ data: Record<string, string> }>(kc, ['get', 'configmap', 'metrics-relay-ca', '-n', ns]);
    expect(cm.data['ca.crt']).toBe(Buffer.from((await secretData(kc))['ca.crt']!, 'base64').toString());

    const projection = projectCaConfigMap(c, ns);
    caFile = projection.file;
    await projection.ready;
    web = new LocalKubelet({
      kubeconfig: kc, namespace: ns, selector: 'app=web', log,
      sidecarArgs: async (p) => ['--aggregator', c.ingest.map((x) => `127.0.0.1:${x.port}`).join(','), '--ca-file', caFile, '--token-file', await podTokenFile(kc, c.dir, ns, p), '--interval', '1s', '--metrics', 'cm_*'],
    });
    c.kubelets.push(web);
    web.start();
    await until('the pod streaming to both replicas', async () => ((await openStreams(c)).every((n) => n === 1) ? true : undefined), 30_000);
  });

  it('rotates the CA under load: no Available flap, no failed metric fetch, every stream reconnects at once on the new CA', async () => {
    const kc = c.cp.kubeconfig;
    await kubectl(kc, ['apply', '-f', '-'], hpaManifest(ns, 'web', { type: 'Pods', pods: { metric: { name: 'cm_connection_count' }, target: { type: 'AverageValue', averageValue: '5' } } }));
    const firstCa = certsIn((await secretData(kc))['ca.crt'])[0]!;

    // Watch everything at once while the rotation runs.
    const flaps: string[] = [];
    const hpaProblems: string[] = [];
    const bundleSizes: number[] = [];
    let polls = 0;
    let stop = false;
    const watchers = [
      (async () => {
        while (!stop) {
          for (const [name, cond] of Object.entries(await apiServiceAvailable(kc))) if (cond?.status !== 'True') flaps.push(`${name}: ${JSON.stringify(cond)}`);
          polls++;
          await new Promise((r) => setTimeout(r, 250));
        }
      })(),
      (async () => {
        while (!stop) {
          const st = (await kubectlJson<{ status: { conditions?: Condition[] } }>(kc, ['get', 'hpa', 'web', '-n', ns])).status;
          // ScalingActive=False is how an HPA says it could not get its metric.
          for (const cond of st.conditions ?? []) if (cond.type === 'ScalingActive' && cond.status !== 'True') hpaProblems.push(`${cond.reason}: ${cond.message}`);
          bundleSizes.push(certsIn((await secretData(kc))['ca.crt']).length);
          await new Promise((r) => setTimeout(r, 1000));
        }
      })(),
    ];
    const replicas = async () => (await kubectlJson<{ spec: { replicas: number } }>(kc, ['get', 'deployment', 'web', '-n', ns])).spec.replicas;
    try {
      // The HPA works throughout: up to 3 (15 over a target of 5), down to 1, up again, while the CA turns over.
      const t0 = Date.now();
      let cycles = 0;
      let newCa: X509Certificate | undefined;
      while (Date.now() - t0 < 150_000 && cycles < 100) {
        // Every running pod reports 15 against a target of 5: at least 3 replicas. Then 0 everywhere: 1.
        await until('one running pod', async () => ((await replicas()) === 1 && web.names().length === 1 ? true : undefined));
        await web.app(web.names()[0]!, 'set?connections=15');
        await until('3 replicas', async () => ((await replicas()) >= 3 ? true : undefined), 30_000);
        for (const p of web.names()) await web.app(p, 'set?connections=0').catch(() => undefined);
        await until('back to 1', async () => ((await replicas()) === 1 ? true : undefined), 30_000);
        cycles++;
        const cas = certsIn((await secretData(kc))['ca.crt']);
        if (cas.length === 1 && cas[0]!.fingerprint256 !== firstCa.fingerprint256) {
          newCa = cas[0];
          break;
        }
      }
      log(`${cycles} scale cycles (1 -> 3 -> 1) during the rotation, ${((Date.now() - t0) / 1000).toFixed(0)}s`);
      expect(newCa, 'the first CA was replaced and left the bundle').toBeDefined();
      const serving = certsIn((await secretData(kc))['tls.crt'])[0]!;
      expect(serving.verify(newCa!.publicKey)).toBe(true);
      expect(Math.max(...bundleSizes)).toBe(2);

      // Cut every sidecar stream: each must come back at once, verifying the new CA's certificate with the
      // re-read CA file (the bundle it started with holds only the first CA).
      const firstCaLine = firstCa.toString().split('\n')[1]!;
      await until('the projected CA file without the first CA', async () => (readFileSync(caFile, 'utf8').includes(firstCaLine) ? undefined : true), 10_000);
      // Once the scale-down has settled: one pod, streaming to both replicas.
      const settled = async () => ((await replicas()) === 1 && web.names().length === 1 && (await openStreams(c)).every((n) => n === 1) ? true : undefined);
      await until('one pod streaming to both replicas before the cut', settled, 30_000);
      const pod = web.pods.get(web.names()[0]!)!;
      const ups = () => pod.sidecarLog.filter((l) => l.includes('stream to aggregator replica up')).length;
      const before = ups();
      const cut = Date.now();
      for (const p of c.ingest) p.dropConnections();
      await until('both streams up again', async () => (ups() >= before + 2 && (await settled()) ? true : undefined), 15_000);
      log(`both streams back ${Date.now() - cut}ms after the cut`);
      expect(pod.sidecarLog.filter((l) => l.includes('cannot reach aggregator replica'))).toEqual([]);
    } catch (err) {
      log(`HPA: ${JSON.stringify((await kubectlJson<{ status: unknown }>(kc, ['get', 'hpa', 'web', '-n', ns])).status)}`);
      log(`streams per replica: ${JSON.stringify(await openStreams(c))}, pods: ${web.names().join(' ')}`);
      for (const p of web.pods.values()) log(`sidecar ${p.name}:\n  ${p.sidecarLog.slice(-8).join('\n  ')}`);
      for (const a of c.aggregators) log(`aggregator ${a.ports['ingest']}:\n  ${a.lines.filter((l) => /serving certificate|certificates rotated|leader|warn/i.test(l)).slice(-6).join('\n  ')}`);
      throw err;
    } finally {
      stop = true;
      await Promise.all(watchers);
    }
    const events = await kubectlJson<{ items: { reason: string; message: string }[] }>(kc, ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.kind=HorizontalPodAutoscaler']);
    // NOTE: metric fetches only. FailedRescale "the object has been modified" is the HPA losing an optimistic
    // update of the Deployment to another writer, and it retries; it says nothing about the metrics API.
    const failed = events.items.filter((e) => /^Failed(Get|ComputeMetrics)/.test(e.reason)).map((e) => `${e.reason}: ${e.message}`);
    const rotations = c.aggregators.flatMap((a) => a.lines.filter((l) => l.includes('certificates rotated')).map((l) => (JSON.parse(l) as { changes: string[] }).changes.join('; ')));
    log(`${polls} APIService polls, ${flaps.length} not Available; rotations:\n  ${rotations.join('\n  ')}`);
    expect(flaps).toEqual([]);
    expect(hpaProblems).toEqual([]);
    expect(failed).toEqual([]);
    expect(rotations.some((r) => r.includes('(the new CA has been trusted for the overlap)'))).toBe(true);
    expect(rotations.some((r) => r.includes('every replica serves a certificate of its successor'))).toBe(true);
  });

  it('a second render and apply changes nothing', async () => {
    const kc = c.cp.kubeconfig;
    const manifest = await render(c.balancer.port);
    // Per object: its resourceVersion, and when kubectl's server-side apply last wrote it.
    const state = async () => {
      const out = await kubectl(kc, ['get', '-f', '-', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.resourceVersion} {.metadata.managedFields[?(@.manager=="kubectl")].time}{"\\n"}{end}'], manifest);
      return out.trim().split('\n').sort().map((l) => l.split(' ') as [string, string, string]);
    };
    const before = await state();
    expect(before.length).toBeGreaterThan(15);
    // kubectl diff against a server-side dry run of the same render: no difference (exit code 0).
    await kubectl(kc, ['diff', '--server-side', '-f', '-'], manifest);
    await new Promise((r) => setTimeout(r, 1100)); // managedFields times have a one-second resolution
    expect(await kubectl(kc, ['apply', '--server-side', '-f', '-'], manifest)).toMatch(/serverside-applied/);
    const after = await state();
    expect(after.map(([obj, , applied]) => `${obj} ${applied}`)).toEqual(before.map(([obj, , applied]) => `${obj} ${applied}`));
    // Objects only the render writes did not change at all. The others have writers of their own: the aggregator
    // (Lease renewals, the Secret, caBundles) and the kube-aggregator (APIService status).
    const ours = (rows: string[][]) => rows.filter(([obj]) => !/^(Lease|Secret|APIService|MutatingWebhookConfiguration)\//.test(obj!)).map((r) => r.join(' '));
    expect(ours(after)).toEqual(ours(before));
    // The aggregator's fields survived: the caBundles and the Secret's data.
    expect(Object.keys(await secretData(kc)).sort()).toEqual(['ca-keys.pem', 'ca.crt', 'tls.crt', 'tls.key']);
    for (const [, cond] of Object.entries(await apiServiceAvailable(kc))) expect(cond?.status).toBe('True');
  });

  it('when the leader stops, the other replica takes the Lease over and goes on rotating', async () => {
    const kc = c.cp.kubeconfig;
    const holder = async () => (await kubectlJson<{ spec: { holderIdentity?: string } }>(kc, ['get', 'lease', 'metrics-relay-tls-leader', '-n', NS])).spec.holderIdentity;
    const first = await holder();
    const leader = c.aggregators.find((a) => a.lines.some((l) => l.includes('became the leader') && l.includes(first!)))!;
    const other = c.aggregators.find((a) => a !== leader)!;
    const t0 = Date.now();
    await leader.stop();
    await until('the other replica leading', async () => (other.lines.some((l) => l.includes('became the leader')) ? true : undefined), 30_000);
    log(`leadership moved ${Date.now() - t0}ms after the leader stopped`);
    expect(await holder()).not.toBe(first);
    const before = (await secretData(kc))['tls.crt'];
    await until('a certificate renewed by the new leader', async () => ((await secretData(kc))['tls.crt'] !== before ? true : undefined), 60_000);
    for (const [, cond] of Object.entries(await apiServiceAvailable(kc))) expect(cond?.status).toBe('True');
  });
});

describe('helm install path', () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await startCluster(async (apiPort, kc) => {
      await run(helm, ['install', 'metrics-relay', CHART, '--namespace', NS, ...values(apiPort)], { env: { ...process.env, KUBECONFIG: kc } });
    });
  }, 600_000);
  afterAll(() => stopCluster(c));

  it('becomes Available, and helm upgrade with the same values keeps the CA and every caBundle', async () => {
    const kc = c.cp.kubeconfig;
    await waitAvailable(kc);
    const data = await filledSecret(kc);
    expect(certsIn(data['ca.crt'])).toHaveLength(1);
    await run(helm, ['upgrade', 'metrics-relay', CHART, '--namespace', NS, ...values(c.balancer.port)], { env: { ...process.env, KUBECONFIG: kc } });
    const after = await secretData(kc);
    expect(after['ca.crt']).toBe(data['ca.crt']);
    for (const name of APISERVICES) {
      const a = await kubectlJson<{ spec: { caBundle: string } }>(kc, ['get', 'apiservice', name]);
      expect(a.spec.caBundle).toBe(data['ca.crt']);
    }
    for (const [, cond] of Object.entries(await apiServiceAvailable(kc))) expect(cond?.status).toBe('True');
  });
});
