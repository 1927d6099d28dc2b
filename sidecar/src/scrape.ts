import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export type ScrapeFailure = 'timeout' | 'http_status' | 'body_too_large' | 'parse' | 'connect' | 'breaker_open';

/** A failed scrape: why (a bounded label value for self-metrics) and the detail for logs and the aggregator. */
export class ScrapeError extends Error {
  constructor(readonly reason: ScrapeFailure, message: string) {
    super(message);
  }
}

export interface ScrapeResult {
  body: Uint8Array;
  contentType: string | undefined;
}

// NOTE: OpenMetrics first, then text 0.0.4, as Prometheus negotiates.
const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/**
 * GETs the target once: rejects with ScrapeError on connect errors, a non-2xx status, more than maxBytes of body
 * (the read is aborted, memory stays bounded) or no complete answer within timeoutMs (a hanging app).
 */
export function scrapeOnce(target: URL, timeoutMs: number, maxBytes: number): Promise<ScrapeResult> {
  return new Promise((resolve, reject) => {
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const fail = (err: ScrapeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const req = request(target, { headers: { accept: ACCEPT, 'user-agent': 'metrics-relay-sidecar' }, agent: false }, (res) => {
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
        res.resume();
        return fail(new ScrapeError('http_status', `GET ${target} answered HTTP ${res.statusCode}`));
      }
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) return fail(new ScrapeError('body_too_large', `GET ${target}: body of ${declared} bytes is over the ${maxBytes}-byte limit`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) return fail(new ScrapeError('body_too_large', `GET ${target}: body is over the ${maxBytes}-byte limit`));
        chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ body: Buffer.concat(chunks, size), contentType: res.headers['content-type'] });
      });
      res.on('aborted', () => fail(new ScrapeError('connect', `GET ${target}: the connection closed before the body ended`)));
      res.on('error', (err) => fail(new ScrapeError('connect', `GET ${target}: ${err.message}`)));
    });
    const timer = setTimeout(() => fail(new ScrapeError('timeout', `GET ${target}: no complete answer within ${timeoutMs}ms`)), timeoutMs);
    req.on('error', (err) => fail(new ScrapeError('connect', `GET ${target}: ${err.message}`)));
    req.end();
  });
}
