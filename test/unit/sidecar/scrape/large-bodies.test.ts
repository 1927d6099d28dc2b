import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { createScrape, LargeBodyBudget, ScrapeError } from '../../../../sidecar/src/scrape/scrape.js';

// The node agent's pods share one budget for large bodies: pages that do not fit fail their own scrape, while
// small pages never need any of it.

const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A page of about `bytes` (comment lines, then one sample); `hold` keeps the answer open after its first 100 KB (past the 64 KiB a buffer starts with). */
async function app(bytes: number, opts: { hold?: Promise<void>; chunked?: boolean } = {}): Promise<URL> {
  const filler = '# filler line of a large exposition page........................................\n';
  const body = Buffer.from(`${filler.repeat(Math.ceil(bytes / filler.length))}cm_value 7\n`);
  const server = createServer((_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', ...(opts.chunked ? {} : { 'content-length': body.length }) });
    if (!opts.hold) return void res.end(body);
    res.write(body.subarray(0, 100_000));
    void opts.hold.then(() => res.end(body.subarray(100_000)));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`);
}

const scrapeOf = (target: URL, bodies: LargeBodyBudget) => createScrape({ target, timeoutMs: 5000, maxBodyBytes: 1 << 20, select: (n) => n.startsWith('cm_'), bodies });

describe('large bodies share the budget', () => {
  it.each([false, true])('chunked=%s: a page that does not fit fails its scrape, a small page and the holder are unaffected, and it fits again once freed', async (chunked) => {
    // Room for one body at the cap (1 MiB), not two.
    const budget = new LargeBodyBudget(1_500_000);
    let release!: () => void;
    const held = scrapeOf(await app(800_000, { chunked, hold: new Promise<void>((r) => (release = r)) }), budget)();
    await new Promise((r) => setTimeout(r, 100));
    const big = scrapeOf(await app(800_000, { chunked }), budget);
    const err = await big().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScrapeError);
    expect((err as ScrapeError).reason).toBe('body_too_large');
    expect((err as ScrapeError).message).toMatch(/does not fit now: large pages being read by the node agent's other scrapes hold its 1500000-byte budget/);
    const small = await scrapeOf(await app(2_000), budget)();
    expect(small.families.map((f) => f.name)).toEqual(['cm_value']);
    release();
    expect((await held).families.map((f) => f.name)).toEqual(['cm_value']);
    expect((await big()).families.map((f) => f.name)).toEqual(['cm_value']);
  });
});
