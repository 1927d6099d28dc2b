import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScrape, ScrapeError, type ScrapeFailure } from '../../sidecar/src/scrape/scrape.js';
import { compileSelection } from '../../sidecar/src/series/select.js';

// One scrape against loopback HTTP servers that misbehave in each way a real app can.

let server: Server;
let base: string;
let lastHeaders: IncomingHttpHeaders = {};
const routes: Record<string, (res: ServerResponse) => void> = {
  '/text': (res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# TYPE http_requests_total counter\nhttp_requests_total{path="/a"} 7\ncm_x 1\nother 2\n'),
  '/om': (res) => res.writeHead(200, { 'content-type': 'application/openmetrics-text; version=1.0.0; charset=utf-8' }).end('# TYPE http_requests counter\nhttp_requests_total 7\nhttp_requests_created 1\n# EOF\n'),
  '/om-cut': (res) => res.writeHead(200, { 'content-type': 'application/openmetrics-text; version=1.0.0' }).end('# TYPE cm_x gauge\ncm_x 1\n'),
  '/garbage': (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('cm_ok 1\n<html> is not a metrics page\n'),
  // A defect in an unselected family (its HELP repeated, a label set never closed) does not fail the scrape.
  '/windows': (res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# HELP node_a A.\nnode_a{x="1" 1\n# HELP cm_x X.\ncm_x 1\n# HELP node_a A again.\n'),
  '/latin1': (res) => res.writeHead(200).end(Buffer.from([0x63, 0x6d, 0x5f, 0x78, 0x7b, 0x61, 0x3d, 0x22, 0xe9, 0x22, 0x7d, 0x20, 0x31, 0x0a])),
  '/500': (res) => res.writeHead(500).end('boom'),
  '/hang': () => undefined,
  '/slow-body': (res) => {
    res.writeHead(200);
    res.write('cm_x 1\n');
  },
  '/big-declared': (res) => res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000)),
  '/big-chunked': (res) => {
    res.writeHead(200);
    const chunk = `cm_x{pad="${'y'.repeat(1000)}"} 1\n`;
    for (let i = 0; i < 10 && res.write(chunk); i++);
    res.end();
  },
  '/truncated': (res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write('cm_x 1\ncm_y 2\n');
    setTimeout(() => res.socket?.destroy(), 10);
  },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    lastHeaders = req.headers;
    (routes[req.url ?? ''] ?? ((r: ServerResponse) => r.writeHead(404).end()))(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const scrape = (path: string, opts: { timeoutMs?: number; maxBodyBytes?: number; metrics?: string[]; url?: string } = {}) =>
  createScrape({ target: new URL(opts.url ?? `${base}${path}`), timeoutMs: opts.timeoutMs ?? 500, maxBodyBytes: opts.maxBodyBytes ?? 4096, select: compileSelection(opts.metrics ?? ['cm_*', 'http_requests_total']) })();

async function failure(p: Promise<unknown>): Promise<{ reason: ScrapeFailure; message: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ScrapeError);
  return err as ScrapeError;
}

describe('one scrape', () => {
  it('asks for OpenMetrics first, then text 0.0.4', async () => {
    await scrape('/text');
    expect(lastHeaders.accept).toMatch(/^application\/openmetrics-text;version=1\.0\.0,.*text\/plain;version=0\.0\.4;q=0\.5/);
    expect(lastHeaders['accept-encoding']).toBeUndefined();
  });

  it('parses text 0.0.4 and keeps only the selected families', async () => {
    expect((await scrape('/text')).families.map((f) => f.name)).toEqual(['http_requests_total', 'cm_x']);
  });

  it('takes a page whose unselected families are broken, with no warning about them', async () => {
    expect(await scrape('/windows')).toEqual({ families: [{ name: 'cm_x', type: 'untyped', help: 'X.', samples: [{ name: 'cm_x', labels: {}, value: 1 }] }], warnings: [], cut: new Map() });
  });

  it('parses OpenMetrics by its content type; the counter is selected by its _total name', async () => {
    const { families } = await scrape('/om');
    expect(families).toMatchObject([{ name: 'http_requests', type: 'counter', samples: [{ name: 'http_requests_total', value: 7 }, { name: 'http_requests_created' }] }]);
    expect(await failure(scrape('/om-cut'))).toMatchObject({ reason: 'parse', message: expect.stringContaining('# EOF') });
  });

  it.each<[string, ScrapeFailure, RegExp]>([
    ['/garbage', 'parse', /not a valid exposition: line 2: /],
    ['/latin1', 'parse', /line 1: invalid UTF-8/], // in a label value of the selected cm_x
    ['/500', 'http_status', /answered HTTP 500/],
    ['/404', 'http_status', /answered HTTP 404/],
    ['/hang', 'timeout', /no complete answer within 300ms/],
    ['/slow-body', 'timeout', /no complete answer within 300ms/],
    ['/big-declared', 'body_too_large', /body of 5000 bytes is over the 4096-byte limit/],
    ['/big-chunked', 'body_too_large', /over the 4096-byte limit \(--max-body-bytes\); read aborted/],
    ['/truncated', 'connect', /connection closed after 14 bytes of the body \(of 1000 announced\)|reading the body/],
  ])('%s fails with reason %s', async (path, reason, message) => {
    const t0 = Date.now();
    const f = await failure(scrape(path, { timeoutMs: 300 }));
    expect(f.reason).toBe(reason);
    expect(f.message).toMatch(message);
    expect(f.message).toContain(`GET ${base}${path}`);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('a refused connection is reason connect', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await failure(scrape('', { url: `http://127.0.0.1:${port}/metrics` }))).toMatchObject({ reason: 'connect', message: expect.stringContaining('ECONNREFUSED') });
  });
});
