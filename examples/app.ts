import express, { type Request, type Response } from 'express';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { Counter, Gauge, Registry } from 'prom-client';

/** How /metrics misbehaves, for tests of the sidecar's error handling. */
export type FailMode = 'ok' | 'garbage' | 'truncated' | '500' | 'hang' | 'huge';
const MODES: readonly FailMode[] = ['ok', 'garbage', 'truncated', '500', 'hang', 'huge'];
const HUGE_BYTES = 50 * 1024 * 1024;

/** A running example app. */
export interface ExampleApp {
  /** The port it listens on. */
  port: number;
  /** cm_connection_count. */
  setConnections(n: number): void;
  /** cm_queue_depth{queue="orders"}. */
  setQueue(n: number): void;
  /** How the next /metrics responses misbehave, until set back to 'ok'. */
  setFailMode(mode: FailMode): void;
  /** Stops listening and cuts open connections (a hanging /metrics too). Idempotent. */
  close(): Promise<void>;
}

/**
 * The classic "connections per pod" app. GET /connection and /disconnect move the gauge cm_connection_count;
 * GET /work stands for the app's real work; every request but /metrics counts http_requests_total{path} (path
 * "other" for unknown ones); cm_queue_depth{queue="orders"} stands for a queue exporter (external metrics).
 * Tests set values with GET or POST /set?connections=N&queue=M and break /metrics with /fail?mode=garbage|
 * truncated|500|hang|huge|ok: garbage text, a body cut off mid-way, HTTP 500, no answer at all, or a 50 MB body.
 * Listens on host (default 127.0.0.1) and port (default 0: any free port).
 */
export async function startExampleApp(opts: { port?: number; host?: string } = {}): Promise<ExampleApp> {
  const registry = new Registry();
  const connections = new Gauge({ name: 'cm_connection_count', help: 'Open connections of this instance.', registers: [registry] });
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests served.', labelNames: ['path'], registers: [registry] });
  const queue = new Gauge({ name: 'cm_queue_depth', help: 'Jobs waiting in the queue.', labelNames: ['queue'], registers: [registry] });
  queue.set({ queue: 'orders' }, 0);
  let mode: FailMode = 'ok';
  let open = 0;
  const setConnections = (n: number) => connections.set((open = Math.max(0, n)));
  const setQueue = (n: number) => queue.set({ queue: 'orders' }, n);

  const app = express();
  app.disable('x-powered-by');
  const routes = new Set(['/connection', '/disconnect', '/work', '/set', '/fail']);
  app.use((req, _res, next) => {
    if (req.path !== '/metrics') requests.inc({ path: routes.has(req.path) ? req.path : 'other' });
    next();
  });
  app.get('/connection', (_req, res) => {
    setConnections(open + 1);
    res.type('text/plain').send(`${open}\n`);
  });
  app.get('/disconnect', (_req, res) => {
    setConnections(open - 1);
    res.type('text/plain').send(`${open}\n`);
  });
  app.get('/work', (_req, res) => {
    res.type('text/plain').send('done\n');
  });
  const set = (req: Request, res: Response): void => {
    const c = Number(req.query['connections']);
    const q = Number(req.query['queue']);
    if (req.query['connections'] !== undefined) setConnections(Number.isFinite(c) ? c : 0);
    if (req.query['queue'] !== undefined) setQueue(Number.isFinite(q) ? q : 0);
    res.json({ connections: open });
  };
  app.get('/set', set);
  app.post('/set', set);
  app.all('/fail', (req, res) => {
    const m = String(req.query['mode'] ?? 'ok') as FailMode;
    if (!MODES.includes(m)) return void res.status(400).type('text/plain').send(`mode must be one of ${MODES.join(', ')}\n`);
    mode = m;
    res.json({ mode });
  });
  app.get('/metrics', async (_req, res) => {
    switch (mode) {
      case 'garbage':
        return void res.type('text/plain').send('this is { not a metrics page\n');
      case '500':
        return void res.status(500).type('text/plain').send('internal error\n');
      case 'hang':
        return; // never answers
      case 'truncated': {
        const body = await registry.metrics();
        // Announce the whole body, send half of it, then cut the connection.
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': String(Buffer.byteLength(body)) });
        res.write(body.slice(0, Math.floor(body.length / 2)));
        return void setTimeout(() => res.socket?.destroy(), 20);
      }
      case 'huge': {
        res.writeHead(200, { 'content-type': registry.contentType });
        const line = `cm_huge{pad="${'x'.repeat(1000)}"} 1\n`;
        let sent = 0;
        // Written only as fast as the client reads: a client that stops reading costs no memory here.
        const pump = (): void => {
          while (sent < HUGE_BYTES && res.write(line)) sent += line.length;
          if (sent >= HUGE_BYTES) res.end();
          else res.once('drain', pump);
        };
        res.on('close', () => (sent = Infinity));
        return pump();
      }
      default:
        res.type(registry.contentType).send(await registry.metrics());
    }
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as { port: number }).port,
    setConnections,
    setQueue,
    setFailMode: (m) => void (mode = m),
    close: () =>
      (closed ??= new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

// `node dist/examples/app.js [--port N] [--host H]` prints {"msg":"ports","port":N} once listening.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' } } });
  const app = await startExampleApp({ port: Number(values.port), host: values.host });
  process.stdout.write(`${JSON.stringify({ msg: 'ports', port: app.port })}\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
