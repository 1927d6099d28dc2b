import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type Agent } from 'node:http';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** From sending the request to the body's last byte (before JSON parsing), in ms. */
  ms: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * GETs (or sends) a URL; https URLs accept the aggregator's self-signed certificate unless `ca` is given.
 * `json` is the parsed body when it parses, else undefined. `agent` keeps connections alive between calls.
 */
export function get(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string; cert?: string; key?: string; agent?: Agent } = {}): Promise<HttpResult> {
  const u = new URL(url);
  const doRequest = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = doRequest(
      u,
      { method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: opts.ca !== undefined, ca: opts.ca, cert: opts.cert, key: opts.key, timeout: 10_000, ...(opts.agent ? { agent: opts.agent } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const ms = performance.now() - t0;
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, ms, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
