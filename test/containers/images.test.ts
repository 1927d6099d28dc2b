import { mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { ensureBaseImage } from './base-image.js';
import { buildImage, ensureDocker, imageSize, LoopbackContainer, run, type DockerDaemon } from './docker.js';

// Read lazily by testcontainers. Nothing may be pulled here: no Ryuk (an image from a registry), and a fixed
// host, else /.dockerenv makes testcontainers look for the Docker host by running an alpine image.
process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';
process.env['TESTCONTAINERS_HOST_OVERRIDE'] = '127.0.0.1';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGGREGATOR_IMAGE = 'metrics-relay-test/aggregator:latest';
const SIDECAR_IMAGE = 'metrics-relay-test/sidecar:latest';
const API_PATH = '/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/%2A/cm_connection_count';

describe('container images', () => {
  let docker: DockerDaemon | undefined;
  let baseImage = '';
  let network: StartedNetwork | undefined;
  const containers: StartedTestContainer[] = [];
  const logs: Record<string, string[]> = {};

  beforeAll(async () => {
    docker = await ensureDocker();
    baseImage = await ensureBaseImage();
    // One after the other: the sidecar's build reuses the aggregator build's cached `npm ci` layer.
    await buildImage(REPO_ROOT, 'Dockerfile.aggregator', AGGREGATOR_IMAGE, baseImage);
    await buildImage(REPO_ROOT, 'Dockerfile.sidecar', SIDECAR_IMAGE, baseImage);
  });

  afterAll(async () => {
    for (const c of containers.reverse()) await c.stop({ timeout: 5_000 }).catch(() => {});
    // The sidecar is stopped without removal (to read its exit code): remove whatever is left.
    if (containers.length) await run('docker', ['rm', '-f', ...containers.map((c) => c.getId())], { timeoutMs: 30_000 }).catch(() => {});
    await network?.stop().catch(() => {});
    await docker?.stop();
  });

  it('runs both images as uid 65532; the sidecar image is the base plus its two bundles', async () => {
    for (const image of [AGGREGATOR_IMAGE, SIDECAR_IMAGE]) {
      expect((await run('docker', ['image', 'inspect', '-f', '{{.Config.User}}', image], { timeoutMs: 10_000 })).trim()).toBe('65532:65532');
    }
    const [base, aggregator, sidecar] = await Promise.all([imageSize(baseImage), imageSize(AGGREGATOR_IMAGE), imageSize(SIDECAR_IMAGE)]);
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(`image sizes: base ${mb(base)}, aggregator ${mb(aggregator)}, sidecar ${mb(sidecar)} (base + ${mb(sidecar - base)})`);
    // The sidecar's bundle and the node agent's (the larger: it carries the Kubernetes client); no node_modules.
    expect(sidecar - base).toBeLessThan(7e6);
  });

  it('streams a value from the app through the sidecar to the aggregator API; the goodbye removes it', async () => {
    onTestFailed(() => {
      for (const [name, lines] of Object.entries(logs)) console.log(`--- ${name} logs ---\n${lines.join('').slice(-4000)}`);
    });
    network = await new Network().start();
    const start = async (name: string, container: LoopbackContainer, ready: RegExp): Promise<StartedTestContainer> => {
      logs[name] = [];
      const started = await container
        .withNetwork(network!)
        .withNetworkAliases(name)
        .withLogConsumer((stream) => stream.on('data', (line: Buffer | string) => logs[name]!.push(String(line))))
        .withWaitStrategy(Wait.forLogMessage(ready))
        .withStartupTimeout(30_000)
        .start();
      containers.push(started);
      return started;
    };

    // The example app is in neither image (each carries its own binary only): bundled here and run on the base.
    const appBundle = join(mkdtempSync(join(tmpdir(), 'metrics-relay-app-')), 'app.mjs');
    await build({ entryPoints: [join(REPO_ROOT, 'examples/app.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node24', outfile: appBundle, logLevel: 'warning', banner: { js: "import{createRequire}from'module';const require=createRequire(import.meta.url);" } });
    const app = await start('app', new LoopbackContainer(baseImage).withCopyFilesToContainer([{ source: appBundle, target: '/app/app.mjs', mode: 0o644 }]).withCommand(['node', '/app/app.mjs', '--port', '8080', '--host', '0.0.0.0']).withLoopbackPorts(8080), /"msg":"ports"/);
    // --standalone listens on loopback unless --bind-address says otherwise (logged as a warning).
    const aggregator = await start('aggregator', new LoopbackContainer(AGGREGATOR_IMAGE).withCommand(['aggregator', '--standalone', '--bind-address', '0.0.0.0']).withLoopbackPorts(6443), /"msg":"ports"/);
    const sidecar = await start(
      'sidecar',
      new LoopbackContainer(SIDECAR_IMAGE).withCommand(['sidecar', '--target', 'http://app:8080/metrics', '--aggregator', 'aggregator:9443', '--insecure', '--pod-name', 'web-1', '--pod-namespace', 'demo', '--pod-labels', 'app=web', '--interval', '1s']),
      /sidecar started/,
    );

    const appUrl = `http://127.0.0.1:${app.getMappedPort(8080)}`;
    const api = `https://127.0.0.1:${aggregator.getMappedPort(6443)}${API_PATH}`;
    const served = async (url: string) => {
      const res = await getInsecure(url);
      const items = (res.body as { items?: { describedObject: { name: string }; value: string }[] } | undefined)?.items;
      return res.status === 200 ? items?.map((i) => `${i.describedObject.name}=${i.value}`).join(',') : undefined;
    };

    for (const n of [7, 12]) {
      const set = await fetch(`${appUrl}/set?connections=${n}`, { signal: AbortSignal.timeout(5_000) });
      expect(set.status).toBe(200);
      await until(`cm_connection_count of web-1 served as ${n}`, async () => ((await served(api)) === `web-1=${n}` ? true : undefined), 20_000);
    }
    expect(await served(`${api}?labelSelector=app%3Dweb`)).toBe('web-1=12');

    // SIGTERM reaches node as PID 1: the sidecar says goodbye and exits 0 well before docker's 10s kill.
    const t0 = Date.now();
    await sidecar.stop({ timeout: 10_000, remove: false });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await run('docker', ['inspect', '-f', '{{.State.ExitCode}}', sidecar.getId()], { timeoutMs: 10_000 })).trim()).toBe('0');
    await until('the series gone after the goodbye', async () => ((await getInsecure(api)).status === 404 ? true : undefined), 3_000);

    // The node agent, from the same image as the chart runs it, scrapes the app at its address as a pod of its node.
    const podsFile = join(mkdtempSync(join(tmpdir(), 'metrics-relay-pods-')), 'pods.json');
    writeFileSync(podsFile, JSON.stringify({
      apiVersion: 'v1', kind: 'PodList',
      items: [{
        metadata: { namespace: 'demo', name: 'web-2', uid: 'uid-web-2', labels: { app: 'web' }, annotations: { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/interval': '1s' } },
        spec: { nodeName: 'node-1', containers: [{ name: 'app', ports: [{ containerPort: 8080 }] }] },
        status: { phase: 'Running', podIP: app.getIpAddress(network.getName()) },
      }],
    }));
    const agent = await start(
      'node-agent',
      new LoopbackContainer(SIDECAR_IMAGE)
        .withEntrypoint(['node', '--lite-mode', '--max-semi-space-size=1', '/app/node-agent.mjs'])
        .withCopyFilesToContainer([{ source: podsFile, target: '/tmp/pods.json', mode: 0o644 }])
        .withCommand(['--node-name', 'node-1', '--pods-file', '/tmp/pods.json', '--aggregator', 'aggregator:9443', '--insecure']),
      /node agent started/,
    );
    await until('web-2 served through the node agent', async () => ((await served(api)) === 'web-2=12' ? true : undefined), 20_000);
    await agent.stop({ timeout: 10_000, remove: false });
    expect((await run('docker', ['inspect', '-f', '{{.State.ExitCode}}', agent.getId()], { timeoutMs: 10_000 })).trim()).toBe('0');
  });
});

/** GET over HTTPS, trusting the self-signed certificate that --standalone serves with. */
function getInsecure(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        } catch {
          reject(new Error(`GET ${url}: ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 5s`)));
    req.on('error', reject);
  });
}

/** Polls until check() gives a value, at most timeoutMs; the error names what was awaited and the last failure. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = `; last error: ${(err as Error).message}`;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
