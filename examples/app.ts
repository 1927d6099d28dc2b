import express from 'express';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { Counter, Gauge, Registry } from 'prom-client';

/** How /metrics misbehaves, for tests of the sidecar's error handling. */
export type FailMode = 'ok' | 'garbage' | 'truncated' | '500' | 'hang' | 'huge';
const MODES: readonly FailMode[] = ['ok', 'garbage', 'truncated', '500', 'hang', 'huge'];

export interface ExampleApp {
  port: number;
  close(): Promise<void>;
}

/**
 * The classic "connections per pod" app: GET /connection and /disconnect move the gauge cm_connection_count,
 * every request counts http_requests_total{path}, and cm_queue_depth{queue="orders"} stands for a queue
 * exporter. Tests set values with GET /set?connections=N&queue=M and break /metrics with GET /fail?mode=...
 */
export async function startExampleApp(opts: { port?: number; host?: string } = {}): Promise<ExampleApp> {
  const registry = new Registry();
  const connections = new Gauge({ name: 'cm_connection_count', help: 'Open connections of this instance.', registers: [registry] });
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests served.', labelNames: ['path'], registers: [registry] });
  const queue = new Gauge({ name: 'cm_queue_depth', help: 'Jobs waiting in the queue.', labelNames: ['queue'], registers: [registry] });
  queue.set({ queue: 'orders' }, 0);
  let mode: FailMode = 'ok';
  let open = 0;

  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) => {
    if (req.path !== '/metrics') requests.inc({ path: req.path });
    next();
  });
  app.get('/connection', (_req, res) => {
    connections.set(++open);
    res.type('text/plain').send(`${open}\n`);
  });
  app.get('/disconnect', (_req, res) => {
    open = Math.max(0, open - 1);
    connections.set(open);
    res.type('text/plain').send(`${open}\n`);
  });
  app.get('/set', (req, res) => {
    const c = req.query['connections'];
    const q = req.query['queue'];
    if (typeof c === 'string') connections.set((open = Math.max(0, Number(c) || 0)));
    if (typeof q === 'string') queue.set({ queue: 'orders' }, Number(q) || 0);
    res.json({ connections: open });
  });
  app.get('/fail', (req, res) => {
    const m = String(req.query['mode'] ?? 'ok') as FailMode;
    if (!MODES.includes(m)) return void res.status(400).send(`mode must be one of ${MODES.join(', ')}\n`);
    mode = m;
    res.json({ mode });
  });
  app.get('/metrics', async (_req, res) => {
    switch (mode) {
      case 'garbage':
        return void res.type('text/plain').send('this is { not a metrics page\n');
      case '500':
        return void res.status(500).send('internal error\n');
      case 'hang':
        return; // never answers
      case 'truncated': {
        const body = await registry.metrics();
        // Promise more than is sent, then cut the connection mid-body.
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': String(body.length + 100) });
        res.write(body.slice(0, Math.floor(body.length / 2)));
        return void setTimeout(() => res.socket?.destroy(), 20);
      }
      case 'huge': {
        res.writeHead(200, { 'content-type': registry.contentType });
        const line = `${'x'.repeat(1000)} 1\n`;
        let sent = 0;
        const pump = () => {
          // 50 MB, written as the client reads (it may stop reading long before).
          while (sent < 50 * 1024 * 1024 && res.write(line)) sent += line.length;
          if (sent >= 50 * 1024 * 1024) res.end();
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
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// `node dist/examples/app.js --port N [--host H]`: prints {"msg":"ports","port":N} when listening.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' } } });
  const app = await startExampleApp({ port: Number(values.port), host: values.host });
  process.stdout.write(`${JSON.stringify({ msg: 'ports', port: app.port })}\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
