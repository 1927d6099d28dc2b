import { createRequire } from 'node:module';
import { ListenError } from '../../common/src/errors.js';
import type { Registry } from 'prom-client';

// NOTE: required, not imported: an ESM import of node:http loads undici for its WebSocket getters (see scrape/scrape.ts).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface OpsServerOptions {
  port: number;
  host: string;
  registry: Registry;
  /** /readyz: undefined when ready, else why not. */
  notReady(): string | undefined;
  /** /healthz and /livez: undefined when live, else why not. */
  notLive(): string | undefined;
}

/** The sidecar's plain-HTTP port: /metrics (its own), /healthz, /livez, /readyz. */
export interface OpsServer {
  /** The bound port (an OS-chosen one when asked for 0). */
  port: number;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

/** Starts the ops server; rejects with a message naming --metrics-port when it cannot listen. */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const text = { 'content-type': 'text/plain; charset=utf-8' };
  const probe = (why: string | undefined) => (why === undefined ? { code: 200, body: 'ok\n' } : { code: 503, body: `${why}\n` });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, text).end(`${err.message}\n`),
      );
      return;
    }
    const answer = path === '/readyz' ? probe(opts.notReady()) : path === '/healthz' || path === '/livez' ? probe(opts.notLive()) : { code: 404, body: 'not found: try /metrics, /healthz, /readyz\n' };
    res.writeHead(answer.code, text).end(answer.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`--metrics-port ${opts.port}: cannot listen on ${opts.host}: ${err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message}`)));
    server.listen(opts.port, opts.host, resolve);
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
