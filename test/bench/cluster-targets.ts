// The apps of the cluster bench, all in one process: `cluster-targets.js <pods>` listens on podAddress(i):APP_PORT
// for every pod and serves its page on /metrics, then prints {"msg":"ports","app":APP_PORT}. Stops on SIGTERM.
// Its own cost is not the bench's subject: it stands in for the apps, which every mode scrapes alike.
import { createServer, type Server } from 'node:http';
import { APP_PORT, page, podAddress } from './cluster-pods.js';

const pods = Number(process.argv[2]);
const indexOf = new Map<string, number>();
const servers: Server[] = [];

await Promise.all(
  Array.from({ length: pods }, (_, i) => {
    const address = podAddress(i);
    indexOf.set(address, i);
    const server = createServer((req, res) => {
      const i = indexOf.get(req.socket.localAddress ?? '');
      if (req.url !== '/metrics' || i === undefined) return void res.writeHead(404).end();
      // NOTE: with a content-length, as client_golang and prom-client send a page this small.
      const body = Buffer.from(page(i, Date.now()));
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': body.length });
      res.end(body);
    });
    servers.push(server);
    return new Promise<void>((resolve, reject) => server.once('error', reject).listen(APP_PORT, address, resolve));
  }),
);
process.stdout.write(`${JSON.stringify({ msg: 'ports', app: APP_PORT, pods })}\n`);
process.on('SIGTERM', () => {
  for (const s of servers) s.closeAllConnections();
  process.exit(0);
});
