import { createRequire } from 'node:module';
import { formatFromContentType, parsePage, ParseError, type ParsedPage } from './parse/exposition.js';

/** Why a scrape failed: a bounded label value of metrics_relay_sidecar_scrape_errors_total. */
export type ScrapeFailure = 'timeout' | 'http_status' | 'body_too_large' | 'parse' | 'connect' | 'breaker_open';

/** A failed scrape: the reason, and a message for logs and for the aggregator (Snapshot.error). */
export class ScrapeError extends Error {
  override readonly name = 'ScrapeError';
  constructor(readonly reason: ScrapeFailure, message: string) {
    super(message);
  }
}

export interface ScrapeOptions {
  target: URL;
  /** Whole request: connect, headers and body (--timeout, below the interval). */
  timeoutMs: number;
  /** Largest body read (--max-body-bytes); the read is aborted past it. */
  maxBodyBytes: number;
  /** Which families to keep (compileSelection). */
  select: (familyName: string) => boolean;
}

// NOTE: OpenMetrics first, then text 0.0.4, as Prometheus asks. No Accept-Encoding: on loopback, gzip only costs CPU.
const ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/**
 * One scrape: GET the target and parse the whole body, or reject with a ScrapeError — connect (refused, reset, body
 * cut short), timeout (no complete answer in time: a hanging app), http_status (not 2xx), body_too_large (more than
 * maxBodyBytes; the read is aborted, memory stays bounded), parse (not valid UTF-8 or not an exposition; the error
 * names the line). Never resolves with part of a body; what the parser let pass comes back as its warnings.
 */
export function createScrape(opts: ScrapeOptions): () => Promise<ParsedPage> {
  return async () => {
    const { body, contentType } = await get(opts.target, opts.timeoutMs, opts.maxBodyBytes);
    try {
      return parsePage(body, formatFromContentType(contentType), opts.select);
    } catch (err) {
      const detail = err instanceof ParseError ? err.message : `parser failed: ${(err as Error).message}`;
      throw new ScrapeError('parse', `GET ${opts.target}: not a valid exposition: ${detail}`);
    }
  };
}

// NOTE: required, not imported: an ESM import of node:http evaluates its lazy WebSocket getters, which load
// undici (about 3 MB of RSS in this process) for nothing. node:https only loads when the target is https.
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');

function get(target: URL, timeoutMs: number, maxBytes: number): Promise<{ body: Buffer; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks: Buffer[] = [];
    const fail = (reason: ScrapeFailure, message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Let what was read go at the next GC, even while the request object lives on.
      chunks.length = 0;
      req.destroy();
      reject(new ScrapeError(reason, `GET ${target}: ${message}`));
    };
    const request = target.protocol === 'https:' ? (require('node:https') as typeof import('node:https')).request : http.request;
    const req = request(target, { headers: { accept: ACCEPT, 'user-agent': 'metrics-relay-sidecar' }, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) return fail('http_status', `answered HTTP ${status}`);
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) return fail('body_too_large', `body of ${declared} bytes is over the ${maxBytes}-byte limit (--max-body-bytes)`);
      // NOTE: with a content-length the body is copied into one buffer as it comes, so each socket chunk is garbage
      // at once and the whole body is never held twice (chunks, then their concatenation).
      const whole = declared >= 0 ? Buffer.allocUnsafe(declared) : undefined;
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size + c.length > maxBytes) return fail('body_too_large', `body is over the ${maxBytes}-byte limit (--max-body-bytes); read aborted`);
        if (whole) c.copy(whole, size);
        else chunks.push(c);
        size += c.length;
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const body = whole ? whole.subarray(0, size) : Buffer.concat(chunks, size);
        chunks.length = 0;
        resolve({ body, contentType: res.headers['content-type'] });
      });
      res.on('aborted', () => fail('connect', `connection closed after ${size} bytes of the body${declared >= 0 ? ` (of ${declared} announced)` : ''}`));
      res.on('error', (err) => fail('connect', `reading the body: ${err.message}`));
    });
    const timer = setTimeout(() => fail('timeout', `no complete answer within ${timeoutMs}ms (--timeout)`), timeoutMs);
    req.on('error', (err) => fail('connect', err.message));
    req.end();
  });
}
