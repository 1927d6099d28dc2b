// A real Kubernetes control plane (etcd, kube-apiserver with the aggregation layer, kube-controller-manager)
// run as child processes of the test, without kubelet, scheduler or images. Binaries come from k8s/build.sh.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ControlPlaneOptions {
  /** Directory with etcd, kube-apiserver, kube-controller-manager (output of k8s/build.sh). */
  binDir: string;
  /** Holds pki/, logs/ and admin.kubeconfig (created if missing). */
  workDir: string;
  log?: (line: string) => void;
  /** KCM controllers; default: deployment, replicaset, HPA, serviceaccount. */
  controllers?: string[];
}

export interface ControlPlane {
  /** Admin kubeconfig (client cert in system:masters): `<workDir>/admin.kubeconfig`. */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Cluster CA: signs the apiserver serving cert and client certs (pki/ca.crt, key pki/ca.key). */
  caFile: string;
  /** Front-proxy CA (requestheader client CA) that signed the aggregator's client cert. */
  frontProxyCaFile: string;
  /** ca, apiserver, admin, front-proxy-ca, front-proxy-client (.crt/.key), sa.key, sa.pub. */
  pkiDir: string;
  ports: { etcd: number; etcdPeer: number; apiserver: number; controllerManager: number };
  logsDir: string;
  /** PIDs of etcd, kube-apiserver, kube-controller-manager (for leak checks). */
  pids: number[];
  /** Kills every child process (SIGTERM, then SIGKILL) and removes the etcd data dir. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'horizontal-pod-autoscaler-controller',
  'serviceaccount-controller',
];

/** The Kubernetes minor version of the binaries in binDir (from build.sh's stamp, e.g. "k8s=v1.32.13 …"). */
function kubeMinor(binDir: string): number {
  const stamp = readFileSync(join(binDir, '.stamp'), 'utf8');
  const m = /k8s=v1\.(\d+)\./.exec(stamp);
  if (!m) throw new Error(`${binDir}/.stamp does not name a Kubernetes version: ${stamp.trim()}`);
  return Number(m[1]);
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const workDir = resolve(opts.workDir);
  const pkiDir = join(workDir, 'pki');
  const logsDir = join(workDir, 'logs');
  mkdirSync(pkiDir, { recursive: true });
  mkdirSync(logsDir, { recursive: true });
  const bin = (name: string): string => {
    const p = join(opts.binDir, name);
    if (!existsSync(p)) throw new Error(`${p} missing: run test/e2e/k8s/build.sh`);
    return p;
  };
  const binaries = { etcd: bin('etcd'), apiserver: bin('kube-apiserver'), kcm: bin('kube-controller-manager') };
  const minor = kubeMinor(opts.binDir);

  const t0 = Date.now();
  makePki(pkiDir);
  const p = (f: string): string => join(pkiDir, f);
  const [etcd, etcdPeer, apiserver, controllerManager] = await freePorts(4);
  const ports = { etcd, etcdPeer, apiserver, controllerManager };
  const server = `https://127.0.0.1:${apiserver}`;
  const kubeconfig = join(workDir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfig, server, p('ca.crt'), p('admin.crt'), p('admin.key'));
  const etcdDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : workDir, 'metrics-relay-etcd-'));

  const procs = new Procs(logsDir, log);
  const stop = async (): Promise<void> => {
    await procs.stopAll();
    rmSync(etcdDir, { recursive: true, force: true });
  };
  try {
    const etcdUrl = `http://127.0.0.1:${etcd}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    procs.start('etcd', binaries.etcd, [
      '--name=e2e', `--data-dir=${etcdDir}`, '--unsafe-no-fsync', '--log-level=warn',
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=e2e=${peerUrl}`,
    ]);
    await waitFor('etcd /health', 30_000, procs, async () => (await httpGetText(`${etcdUrl}/health`)).includes('"true"'));

    procs.start('kube-apiserver', binaries.apiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', `--secure-port=${apiserver}`,
      // no default route on a sandbox: the advertise address must be given; a loopback one is only valid
      // without an endpoint reconciler (the default/kubernetes Endpoints cannot hold 127.0.0.1).
      '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      `--tls-cert-file=${p('apiserver.crt')}`, `--tls-private-key-file=${p('apiserver.key')}`,
      `--client-ca-file=${p('ca.crt')}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${p('sa.pub')}`, `--service-account-signing-key-file=${p('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // aggregation layer
      `--requestheader-client-ca-file=${p('front-proxy-ca.crt')}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      // The UID header is behind the RemoteRequestHeaderUID feature: alpha (off) in 1.32, on by default from 1.33.
      ...(minor >= 33 ? ['--requestheader-uid-headers=X-Remote-Uid'] : []),
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${p('front-proxy-client.crt')}`, `--proxy-client-key-file=${p('front-proxy-client.key')}`,
      // ExternalName Service -> 127.0.0.1 needs the ClusterIP resolver (endpoint routing rejects ExternalName)
      '--enable-aggregator-routing=false',
    ]);
    const tls = { ca: readFileSync(p('ca.crt')), cert: readFileSync(p('admin.crt')), key: readFileSync(p('admin.key')) };
    await waitFor('kube-apiserver /readyz', 90_000, procs, async () => (await httpsGet(`${server}/readyz`, tls)).status === 200);

    procs.start('kube-controller-manager', binaries.kcm, [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${controllerManager}`,
      '--leader-elect=false',
      `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
      // each controller runs as system:serviceaccount:kube-system:<name> with a TokenRequest token
      '--use-service-account-credentials=true',
      `--root-ca-file=${p('ca.crt')}`,
      '--horizontal-pod-autoscaler-sync-period=1s',
      '--horizontal-pod-autoscaler-downscale-stabilization=1s',
    ]);
    await waitFor('kube-controller-manager /healthz', 60_000, procs, async () =>
      (await httpsGet(`https://127.0.0.1:${controllerManager}/healthz`, { rejectUnauthorized: false })).status === 200);
    // ReplicaSet pods need the namespace's default ServiceAccount (ServiceAccount admission plugin).
    await waitFor('default ServiceAccount', 30_000, procs, async () =>
      (await httpsGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)).status === 200);
  } catch (err) {
    await stop();
    throw err;
  }
  log(`control plane up in ${Date.now() - t0}ms at ${server}`);
  return {
    kubeconfig, server, caFile: p('ca.crt'), frontProxyCaFile: p('front-proxy-ca.crt'), pkiDir, ports, logsDir, pids: procs.pids(), stop,
  };
}

/**
 * Issues a leaf certificate signed by the control plane's cluster CA (so `caFile` is its caBundle), e.g. a serving
 * cert for an aggregated API server with `sans: ['metrics-adapter.default.svc', '127.0.0.1']`.
 */
export function issueCert(pkiDir: string, name: string, opts: { cn?: string; sans?: string[]; groups?: string[]; client?: boolean }): { certFile: string; keyFile: string } {
  const ext = opts.client ? CLIENT_EXT : SERVER_EXT + sanLine(opts.sans ?? []);
  leaf(pkiDir, name, subject(opts.cn ?? name, opts.groups), 'ca', ext);
  return { certFile: join(pkiDir, `${name}.crt`), keyFile: join(pkiDir, `${name}.key`) };
}

// ---------------------------------------------------------------------------------------------------------------
// processes

class Procs {
  private readonly children: { name: string; child: ChildProcess; exited: Promise<void> }[] = [];
  private readonly onExit = (): void => {
    for (const c of this.children) if (alive(c.child)) c.child.kill('SIGKILL');
  };
  private static readonly usePdeathsig = existsSync('/usr/bin/setpriv');

  private readonly logsDir: string;
  private readonly log: (line: string) => void;

  constructor(logsDir: string, log: (line: string) => void) {
    this.logsDir = logsDir;
    this.log = log;
    process.on('exit', this.onExit);
  }

  start(name: string, file: string, args: string[]): void {
    const logFile = join(this.logsDir, `${name}.log`);
    const fd = openSync(logFile, 'w');
    // setpriv --pdeathsig: the kernel kills the child if this process dies without running exit handlers.
    const [cmd, argv] = Procs.usePdeathsig ? ['/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', file, ...args]] : [file, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' } });
    closeSync(fd);
    const exited = new Promise<void>((res) => child.once('exit', (code, signal) => {
      this.log(`${name} exited (${signal ?? code})`);
      res();
    }));
    child.once('error', (err) => this.log(`${name}: ${err.message}`));
    this.children.push({ name, child, exited });
    this.log(`started ${name} (pid ${child.pid}), log ${logFile}`);
  }

  /** Throws when a child already exited (with its log tail), so startup fails fast. */
  checkAlive(): void {
    for (const c of this.children) {
      if (!alive(c.child)) {
        const tail = readFileSync(join(this.logsDir, `${c.name}.log`), 'utf8').split('\n').slice(-30).join('\n');
        throw new Error(`${c.name} exited early (${c.child.signalCode ?? c.child.exitCode}):\n${tail}`);
      }
    }
  }

  pids(): number[] {
    return this.children.map((c) => c.child.pid!).filter(Boolean);
  }

  /** Reverse start order: KCM, apiserver, then etcd. */
  async stopAll(): Promise<void> {
    for (const c of [...this.children].reverse()) {
      if (alive(c.child)) {
        c.child.kill('SIGTERM');
        const timer = setTimeout(() => c.child.kill('SIGKILL'), 5000);
        await c.exited;
        clearTimeout(timer);
      }
    }
    process.off('exit', this.onExit);
  }
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function waitFor(what: string, timeoutMs: number, procs: Procs, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    procs.checkAlive();
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

/** Ports that were free a moment ago (bound to port 0, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

function httpGetText(url: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = httpGet(url, { timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => res(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
  });
}

function httpsGet(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean }): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { ...tls, timeout: 5000 }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// PKI (openssl, EC P-256 keys: fast to generate, accepted by every component incl. service-account signing)

const SERVER_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n';
const CLIENT_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';

function makePki(dir: string): void {
  ca(dir, 'ca', 'metrics-relay-e2e-ca');
  ca(dir, 'front-proxy-ca', 'metrics-relay-e2e-front-proxy-ca');
  leaf(dir, 'apiserver', '/CN=kube-apiserver', 'ca',
    SERVER_EXT + sanLine(['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', '10.0.0.1']));
  leaf(dir, 'admin', subject('metrics-relay-e2e-admin', ['system:masters']), 'ca', CLIENT_EXT);
  // CN must match --requestheader-allowed-names
  leaf(dir, 'front-proxy-client', '/CN=front-proxy-client', 'front-proxy-ca', CLIENT_EXT);
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key']);
  openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function ca(dir: string, name: string, cn: string): void {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.crt`, '-days', '30', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
}

function leaf(dir: string, name: string, subj: string, caName: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial',
    '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
}

function subject(cn: string, groups: string[] = []): string {
  return `${groups.map((g) => `/O=${g}`).join('')}/CN=${cn}`;
}

function sanLine(sans: string[]): string {
  if (sans.length === 0) return '';
  return `subjectAltName=${sans.map((h) => (/^[0-9.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}\n`;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function writeKubeconfig(file: string, server: string, caFile: string, certFile: string, keyFile: string): void {
  const b64 = (f: string): string => readFileSync(f).toString('base64');
  writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caFile)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(certFile)}
    client-key-data: ${b64(keyFile)}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin, namespace: default}
current-context: e2e
`, { mode: 0o600 });
}
