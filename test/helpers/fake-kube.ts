import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A stand-in kube-apiserver for integration tests of the aggregator's Kubernetes calls (SubjectAccessReview,
 * TokenReview, the authentication ConfigMap, object lists and watches), on 127.0.0.1 over plain HTTP.
 * The real control plane is exercised by the e2e suite; this one lets a test make the API deny or fail on cue.
 */
export class FakeKube {
  /** Decides SubjectAccessReviews; throw to answer 500. */
  decide: (spec: Record<string, unknown>) => { allowed: boolean; denied?: boolean; reason?: string } = () => ({ allowed: true });
  /** Valid tokens -> the user (and audiences) TokenReview returns. */
  readonly tokens = new Map<string, { username: string; uid?: string; groups?: string[]; extra?: Record<string, string[]>; audiences?: string[] }>();
  /** Every SubjectAccessReview body received. */
  readonly reviews: Record<string, unknown>[] = [];
  tokenReviews = 0;
  /** Objects served by list/watch, by collection path (e.g. /api/v1/services). */
  readonly objects = new Map<string, Record<string, unknown>[]>();
  authConfigMap: Record<string, string> = {};
  private readonly watchers = new Map<string, Set<ServerResponse>>();
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const set of this.watchers.values()) for (const w of set) w.end();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** A kubeconfig pointing at this server. */
  kubeconfig(): string {
    const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${this.port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'aggregator-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    }));
    return file;
  }

  /** Adds or replaces an object in a collection and tells the watchers. */
  put(collection: string, obj: Record<string, unknown>): void {
    const list = this.objects.get(collection) ?? [];
    const name = (obj['metadata'] as { name: string }).name;
    const i = list.findIndex((o) => (o['metadata'] as { name: string }).name === name);
    if (i >= 0) list[i] = obj;
    else list.push(obj);
    this.objects.set(collection, list);
    this.emit(collection, i >= 0 ? 'MODIFIED' : 'ADDED', obj);
  }

  remove(collection: string, name: string): void {
    const list = this.objects.get(collection) ?? [];
    const i = list.findIndex((o) => (o['metadata'] as { name: string }).name === name);
    if (i < 0) return;
    const [obj] = list.splice(i, 1);
    this.emit(collection, 'DELETED', obj!);
  }

  setAuthConfigMap(data: Record<string, string>): void {
    this.authConfigMap = data;
    this.emit('/api/v1/namespaces/kube-system/configmaps', 'MODIFIED', this.configMap());
  }

  private configMap(): Record<string, unknown> {
    return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'extension-apiserver-authentication', namespace: 'kube-system', resourceVersion: '2' }, data: this.authConfigMap };
  }

  private emit(collection: string, type: string, object: Record<string, unknown>): void {
    for (const w of this.watchers.get(collection) ?? []) w.write(`${JSON.stringify({ type, object })}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let body = '';
    for await (const c of req) body += c;
    const json = (code: number, obj: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
    };
    if (req.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
      const sar = JSON.parse(body) as { spec: Record<string, unknown> };
      this.reviews.push(sar);
      try {
        return json(201, { ...sar, status: this.decide(sar.spec) });
      } catch (err) {
        return json(500, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: String(err), code: 500 });
      }
    }
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      this.tokenReviews++;
      const tr = JSON.parse(body) as { spec: { token: string; audiences?: string[] } };
      const user = this.tokens.get(tr.spec.token);
      const audiences = user?.audiences ?? ['https://kubernetes.default.svc'];
      const wanted = tr.spec.audiences;
      const ok = user && (!wanted || wanted.some((a) => audiences.includes(a)));
      return json(201, { ...tr, status: ok ? { authenticated: true, user: { username: user.username, uid: user.uid ?? '', groups: user.groups ?? [], extra: user.extra ?? {} }, audiences } : { authenticated: false, error: 'invalid token' } });
    }
    if (url.pathname === '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication') return json(200, this.configMap());
    const onePod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && onePod) {
      const pod = (this.objects.get('/api/v1/pods') ?? []).find((o) => {
        const m = o['metadata'] as { namespace?: string; name: string };
        return m.namespace === onePod[1] && m.name === onePod[2];
      });
      return pod ? json(200, pod) : json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `pods "${onePod[2]}" not found`, reason: 'NotFound', code: 404 });
    }
    const collection = url.pathname;
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      let set = this.watchers.get(collection);
      if (!set) this.watchers.set(collection, (set = new Set()));
      set.add(res);
      req.on('close', () => set!.delete(res));
      return;
    }
    if (req.method === 'GET' && /^\/(api|apis)\//.test(collection)) {
      return json(200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: this.objects.get(collection) ?? [] });
    }
    json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `not found: ${collection}`, reason: 'NotFound', code: 404 });
  }
}
