import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { formatFromContentType, parsePage, ParseError, type ParsedPage, type SampleBudget } from '../parse/index.js';

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
  /** What the parse may hold (SeriesBuilder.budget). */
  budget?: SampleBudget;
  /** Shared by every scrape of the process (the node agent's pods): the large bodies held at once. */
  bodies?: LargeBodyBudget;
}

/**
 * Bytes of buffers over 64 KiB that the scrapes of one process hold at once. The node agent gives its pods one, so
 * a few pods with huge pages cannot together take the agent's memory from every other pod of the node: a body that
 * does not fit fails that pod's scrape (body_too_large), and the small pages of the others never need any.
 */
export class LargeBodyBudget {
  private used = 0;
  constructor(readonly bytes: number) {}

  take(n: number): boolean {
    if (this.used + n > this.bytes) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
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
  const buffer = new BodyBuffer(opts.maxBodyBytes, opts.bodies);
  return async () => {
    try {
      const { body, contentType } = await get(opts.target, opts.timeoutMs, opts.maxBodyBytes, buffer);
      try {
        return parsePage(body, formatFromContentType(contentType), opts.select, opts.budget);
      } catch (err) {
        const detail = err instanceof ParseError ? err.message : `parser failed: ${(err as Error).message}`;
        throw new ScrapeError('parse', `GET ${opts.target}: not a valid exposition: ${detail}`);
      }
    } finally {
      // NOTE: the socket's chunks and the page's text are garbage now, much of it external memory, which V8 frees
      // only when a major GC comes; under the injected memory limit that is too late after a large body.
      if (buffer.length >= LARGE_BODY_BYTES) collectGarbage();
      buffer.done();
    }
  };
}

/** A body at least this large is followed by a full garbage collection; while reading, a minor one every so many bytes. */
const LARGE_BODY_BYTES = 1024 * 1024;
const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;

// NOTE: gc() without --expose-gc on the command line (the flag is set at run time; the function comes from a fresh
// context, where V8 installs it).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

// NOTE: required, not imported: an ESM import of node:http evaluates its lazy WebSocket getters, which load
// undici (about 3 MB of RSS in this process) for nothing. node:https only loads when the target is https.
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');

/**
 * The bytes of the scrape in progress, in one buffer kept from scrape to scrape (a scrape target has one scrape at
 * a time, and the parse copies what it keeps), sized to the declared length, or for a body without one to twice the
 * last body (at least 64 KiB) and, should that not do, once to the cap; let go after a body that used less than a
 * quarter of a large buffer (with a LargeBodyBudget, after every large body). Socket chunks are copied in as they
 * come, so the body is never held twice.
 */
class BodyBuffer {
  private bytes: Buffer = Buffer.alloc(0);
  private size = 0;
  private lastSize = 0;
  private sinceCollected = 0;

  constructor(private readonly maxBytes: number, private readonly budget?: LargeBodyBudget) {}

  /** @param expected the declared content-length, or -1. Returns why the body cannot be read, or undefined. */
  reset(expected: number): string | undefined {
    this.size = 0;
    this.sinceCollected = 0;
    const wanted = expected >= 0 ? expected : Math.min(this.maxBytes, Math.max(SMALL_BUFFER_BYTES, 2 * this.lastSize));
    return wanted > this.bytes.length ? this.replace(wanted) : undefined;
  }

  /** Callers check the cap first: the buffer never grows past it. Returns why the body cannot be read, or undefined. */
  append(chunk: Buffer): string | undefined {
    if (this.size + chunk.length > this.bytes.length) {
      // NOTE: straight to the cap, not doubling: one copy at most, and the pages a body does not fill stay untouched
      // (allocUnsafeSlow leaves them unmapped until written).
      const old = this.bytes;
      const refused = this.replace(this.maxBytes);
      if (refused) return refused;
      old.copy(this.bytes, 0, 0, this.size);
    }
    chunk.copy(this.bytes, this.size);
    this.size += chunk.length;
    // NOTE: each socket chunk is a new allocation outside V8's heap, freed only when a GC finds it dead; a large
    // body would otherwise hold its whole length twice before any GC comes.
    this.sinceCollected += chunk.length;
    if (this.sinceCollected >= COLLECT_EVERY_BYTES) {
      this.sinceCollected = 0;
      collectGarbage({ type: 'minor' });
    }
    return undefined;
  }

  /** A new buffer of `bytes`, taken from the budget when large (the old one's share given back first). */
  private replace(bytes: number): string | undefined {
    const had = charged(this.bytes.length);
    this.budget?.give(had);
    if (this.budget && !this.budget.take(charged(bytes))) {
      this.bytes = Buffer.alloc(0);
      return `a body of up to ${bytes} bytes does not fit now: large pages being read by the node agent's other scrapes hold its ${this.budget.bytes}-byte budget`;
    }
    this.bytes = allocate(bytes);
    return undefined;
  }

  get length(): number {
    return this.size;
  }

  /** The body read; valid until the next reset. */
  view(): Buffer {
    return this.bytes.subarray(0, this.size);
  }

  /** After the body was parsed (or failed): a large buffer that the body used less than a quarter of is let go. */
  done(): void {
    this.lastSize = this.size;
    // NOTE: with a shared budget a large buffer is never kept between scrapes: it would hold its share for good.
    if (this.bytes.length > SMALL_BUFFER_BYTES && (this.budget || this.size * 4 < this.bytes.length)) {
      this.budget?.give(charged(this.bytes.length));
      this.bytes = Buffer.alloc(0);
    }
  }
}

/** What a buffer of `bytes` takes from the budget: nothing up to 64 KiB. */
const charged = (bytes: number): number => (bytes > SMALL_BUFFER_BYTES ? bytes : 0);

/** The buffer a body without a declared length starts in, and the size below which a buffer is always kept. */
const SMALL_BUFFER_BYTES = 64 * 1024;

/**
 * A buffer of its own: Buffer.allocUnsafe hands out slices of a shared 64 KiB pool for small sizes, and a kept slice
 * would keep its whole pool block (the node agent keeps one buffer per pod).
 */
const allocate = (bytes: number): Buffer => Buffer.allocUnsafeSlow(bytes);

function get(target: URL, timeoutMs: number, maxBytes: number, buffer: BodyBuffer): Promise<{ body: Buffer; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: ScrapeFailure, message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new ScrapeError(reason, `GET ${target}: ${message}`));
    };
    const request = target.protocol === 'https:' ? (require('node:https') as typeof import('node:https')).request : http.request;
    const req = request(target, { headers: { accept: ACCEPT, 'user-agent': 'metrics-relay-sidecar' }, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) return fail('http_status', `answered HTTP ${status}`);
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) return fail('body_too_large', `body of ${declared} bytes is over the ${maxBytes}-byte limit (--max-body-bytes)`);
      // NOTE: each socket chunk is copied into the kept buffer as it comes, so it is garbage at once and the body is
      // never held twice (chunks, then their concatenation).
      const refused = buffer.reset(declared >= 0 ? declared : -1);
      if (refused) return fail('body_too_large', refused);
      res.on('data', (c: Buffer) => {
        if (settled) return;
        if (buffer.length + c.length > maxBytes) return fail('body_too_large', `body is over the ${maxBytes}-byte limit (--max-body-bytes); read aborted`);
        const full = buffer.append(c);
        if (full) fail('body_too_large', `${full}; read aborted`);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ body: buffer.view(), contentType: res.headers['content-type'] });
      });
      res.on('aborted', () => fail('connect', `connection closed after ${buffer.length} bytes of the body${declared >= 0 ? ` (of ${declared} announced)` : ''}`));
      res.on('error', (err) => fail('connect', `reading the body: ${err.message}`));
    });
    const timer = setTimeout(() => fail('timeout', `no complete answer within ${timeoutMs}ms (--timeout)`), timeoutMs);
    req.on('error', (err) => fail('connect', err.message));
    req.end();
  });
}
