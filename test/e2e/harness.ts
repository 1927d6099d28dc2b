// What the e2e suite adds around the real control plane: kubectl, a Service-like TCP balancer in front of the
// aggregator replicas, and a "kubelet" that runs each pod as local processes (example app + sidecar).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NODE, CLI, ROOT, eventually } from '../helpers/processes.js';

const run = promisify(execFile);

/** kubectl against the control plane; resolves with stdout, rejects with stderr in the message. */
export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    try {
      return (await run('kubectl', ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 << 20 })).stdout;
    } catch (err) {
      throw new Error(`kubectl ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (errText += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')}: ${errText}`))));
    child.stdin.end(input);
  });
}

export async function kubectlJson<T = any>(kubeconfig: string, args: string[]): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await kubectl(kubeconfig, [...args, '-o', 'json'])) as T;
}

/** Polls fn every 500ms until it yields a value; the error names what was awaited. */
export function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  return eventually(fn, timeoutMs, 500).catch((err: Error) => {
    throw new Error(`waiting for ${what}: ${err.message}`);
  });
}

/** A Deployment of one container (image example-app:e2e, port 8080) with these pod labels and annotations. */
export function deploymentManifest(ns: string, name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns },
    spec: {
      replicas: 1, selector: { matchLabels: labels },
      template: { metadata: { labels, annotations }, spec: { containers: [{ name: 'app', image: 'example-app:e2e', ports: [{ containerPort: 8080 }] }] } },
    },
  });
}

/** An autoscaling/v2 HPA on the Deployment `target`, reacting within a second both ways. */
export function hpaManifest(ns: string, target: string, metric: Record<string, unknown>, max = 6): string {
  return JSON.stringify({
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: target, namespace: ns },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target }, minReplicas: 1, maxReplicas: max, metrics: [metric],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 10, periodSeconds: 1 }] },
        scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }] },
      },
    },
  });
}

/** A kubeconfig file for a ServiceAccount's token (so the chart's RBAC is what the aggregator runs with). */
export async function serviceAccountKubeconfig(cp: { kubeconfig: string; server: string; caFile: string }, file: string, namespace: string, name: string): Promise<string> {
  const token = (await kubectl(cp.kubeconfig, ['create', 'token', name, '-n', namespace, '--duration', '2h'])).trim();
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'sa',
    clusters: [{ name: 'cp', cluster: { server: cp.server, 'certificate-authority': cp.caFile } }],
    users: [{ name: 'sa', user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'cp', user: 'sa' } }],
  }));
  return file;
}

/** A bound ServiceAccount token for one pod, audience metrics-relay (what the kubelet would project), in a file. */
export async function podTokenFile(kubeconfig: string, dir: string, ns: string, pod: { name: string; uid: string }): Promise<string> {
  const token = (await kubectl(kubeconfig, ['create', 'token', 'default', '-n', ns, '--audience', 'metrics-relay', '--bound-object-kind', 'Pod', '--bound-object-name', pod.name, '--bound-object-uid', pod.uid, '--duration', '1h'])).trim();
  const file = join(dir, `token-${ns}-${pod.name}`);
  writeFileSync(file, token);
  return file;
}

/**
 * A TCP balancer on 127.0.0.1 standing in for a Service in front of the aggregator replicas: each connection
 * goes to the next backend that accepts it, so a dead replica is skipped like an endpoint that is not ready.
 */
export class TcpBalancer {
  private server!: Server;
  private next = 0;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(readonly backends: () => number[]) {}

  async start(port = 0): Promise<number> {
    this.server = createServer((client) => this.forward(client, 0));
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** While paused, connections are refused (as when no endpoint is ready). */
  paused = false;

  private forward(client: Socket, tried: number): void {
    if (this.paused) return void client.destroy();
    const backends = this.backends();
    if (tried >= backends.length) return void client.destroy();
    const port = backends[this.next++ % backends.length]!;
    const upstream = connect(port, '127.0.0.1');
    const track = (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    };
    upstream.once('connect', () => {
      track(client);
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    upstream.once('error', () => {
      if (!upstream.remoteAddress) this.forward(client, tried + 1);
    });
  }

  /** Cuts every proxied connection (as when a replica's endpoint goes away). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise((r) => this.server.close(r));
  }
}

export interface LocalPod {
  name: string;
  uid: string;
  app: ChildProcess;
  appPort: number;
  /** The pod IP the app listens on. */
  ip: string;
  sidecar: ChildProcess | undefined;
  /** The sidecar's last 50 stdout lines (its log), for a failing test to show. */
  sidecarLog: string[];
}

/** Waits for a child to print its {"msg":"ports"} line. */
export function portsOf(child: ChildProcess, timeoutMs = 15_000): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ports line within ${timeoutMs}ms: ${buf.slice(-2000)}`)), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.includes('"msg":"ports"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, number>);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ports: ${buf.slice(-2000)}`)));
  });
}

export interface KubeletOptions {
  kubeconfig: string;
  namespace: string;
  /** Label selector of the pods to run (e.g. app=web). */
  selector: string;
  /** Sidecar flags besides the pod identity and target; undefined: pods only get Running/Ready, no processes. */
  sidecarArgs?: (pod: { name: string; uid: string }) => Promise<string[]>;
  /**
   * Node mode: each new pod is bound to this node, gets its own loopback address 127.<subnet>.0.<n> as pod IP and
   * its app listens there on 8080 (the Deployment's containerPort); no sidecar (the node agent scrapes it).
   */
  node?: { name: string; subnet: number };
  log?: (line: string) => void;
}

/**
 * Plays kubelet for the pods of one workload: each new pod is marked Running and Ready through the status
 * subresource and gets an example app and a sidecar as local processes; a deleted pod's processes get SIGTERM.
 */
export class LocalKubelet {
  readonly pods = new Map<string, LocalPod>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** Pods whose sidecar the test stopped on purpose (not restarted). */
  readonly withoutSidecar = new Set<string>();

  constructor(private readonly opts: KubeletOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.sync(), 500);
  }

  private stopped = false;

  async sync(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const list = await kubectlJson<{ items: { metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string }; status?: { phase?: string } }[] }>(this.opts.kubeconfig, ['get', 'pods', '-n', this.opts.namespace, '-l', this.opts.selector]);
      const live = new Set<string>();
      for (const p of list.items) {
        if (p.metadata.deletionTimestamp) continue;
        live.add(p.metadata.name);
        if (!this.pods.has(p.metadata.name) && this.opts.node) await this.runNodePod(p.metadata.name, p.metadata.uid, this.opts.node);
        else if (!this.pods.has(p.metadata.name) && this.opts.sidecarArgs) await this.runPod(p.metadata.name, p.metadata.uid, p.metadata.labels ?? {}, this.opts.sidecarArgs);
        if (p.status?.phase !== 'Running') await this.markReady(p.metadata.name, this.pods.get(p.metadata.name)?.ip ?? '127.0.0.1');
      }
      for (const [name, pod] of this.pods) {
        if (!live.has(name)) {
          this.pods.delete(name);
          pod.sidecar?.kill('SIGTERM');
          pod.app.kill('SIGTERM');
          this.opts.log?.(`pod ${name} gone: processes stopped`);
        }
      }
    } catch (err) {
      this.opts.log?.(`kubelet sync failed: ${String(err)}`);
    } finally {
      this.busy = false;
    }
  }

  private async markReady(name: string, podIP: string): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const cond = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
    const status = { phase: 'Running', startTime: now, podIP, conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map(cond) };
    await kubectl(this.opts.kubeconfig, ['patch', 'pod', name, '-n', this.opts.namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  }

  private nextIp = 1;

  /** Binds the pod to the node (as the scheduler would) and runs its app on the pod's own address. */
  private async runNodePod(name: string, uid: string, node: { name: string; subnet: number }): Promise<void> {
    const ip = `127.${node.subnet}.0.${this.nextIp++}`;
    const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node.name } };
    await kubectl(this.opts.kubeconfig, ['create', '--raw', `/api/v1/namespaces/${this.opts.namespace}/pods/${name}/binding`, '-f', '-'], JSON.stringify(binding));
    const app = spawn(NODE, [`${ROOT}dist/examples/app.js`, '--host', ip, '--port', '8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await portsOf(app);
    if (this.stopped) return void app.kill('SIGKILL');
    this.pods.set(name, { name, uid, app, appPort: 8080, ip, sidecar: undefined, sidecarLog: [] });
    this.opts.log?.(`pod ${name} on node ${node.name}: app on ${ip}:8080`);
  }

  private async runPod(name: string, uid: string, labels: Record<string, string>, sidecarArgs: (pod: { name: string; uid: string }) => Promise<string[]>): Promise<void> {
    const app = spawn(NODE, [`${ROOT}dist/examples/app.js`, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ports = await portsOf(app);
    const appPort = ports['port'] ?? ports['app']!;
    const pod: LocalPod = { name, uid, app, appPort, ip: '127.0.0.1', sidecar: undefined, sidecarLog: [] };
    if (this.stopped) return void app.kill('SIGKILL'); // stop() ran while this pod was starting
    this.pods.set(name, pod);
    // The pod's labels, as the downward API volume would give them.
    const podLabels = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    const args = await sidecarArgs({ name, uid });
    if (this.stopped) return void app.kill('SIGKILL');
    this.startSidecar(pod, [...(podLabels ? ['--pod-labels', podLabels] : []), ...args]);
    this.opts.log?.(`pod ${name} running: app on ${appPort}`);
  }

  startSidecar(pod: LocalPod, args: string[]): void {
    pod.sidecar = spawn(NODE, [CLI, 'sidecar', '--target', `http://127.0.0.1:${pod.appPort}/metrics`, '--pod-name', pod.name, '--pod-namespace', this.opts.namespace, '--pod-uid', pod.uid, '--metrics-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    pod.sidecarLog.length = 0;
    pod.sidecar.stdout!.on('data', (c: Buffer) => {
      pod.sidecarLog.push(...c.toString().trim().split('\n'));
      pod.sidecarLog.splice(0, Math.max(0, pod.sidecarLog.length - 50));
    });
    pod.sidecar.stderr!.on('data', (c: Buffer) => this.opts.log?.(`sidecar ${pod.name}: ${c.toString().trim().slice(0, 300)}`));
  }

  /** Calls the example app of one pod, e.g. `set?connections=5` or `set?queue=8`. */
  async app(name: string, query: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no local pod ${name}`);
    const res = await fetch(`http://${pod.ip}:${pod.appPort}/${query}`);
    if (!res.ok) throw new Error(`${query} on ${name}: HTTP ${res.status}`);
  }

  /** Names of the pods running locally, sorted. */
  names(): string[] {
    return [...this.pods.keys()].sort();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // Let a sync that is under way finish, so no pod it starts escapes.
    for (let i = 0; i < 100 && this.busy; i++) await new Promise((r) => setTimeout(r, 50));
    const exits: Promise<unknown>[] = [];
    for (const pod of this.pods.values()) {
      for (const c of [pod.sidecar, pod.app]) {
        if (c && c.exitCode === null && c.signalCode === null) {
          exits.push(new Promise((r) => c.once('exit', r)));
          c.kill('SIGTERM');
        }
      }
    }
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    for (const pod of this.pods.values()) for (const c of [pod.sidecar, pod.app]) if (c && c.exitCode === null) c.kill('SIGKILL');
    this.pods.clear();
  }
}
