import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadIngest, type Kind, type ScrapeStatus, type WireAck, type WireReportRequest, type WireSeriesDef } from '../../common/src/proto.js';

/** One series of a scrape, as the sidecar sends it. `key` identifies it across scrapes (name + labels). */
export interface OutSeries {
  key: string;
  name: string;
  labels: Record<string, string>;
  kind: Kind;
  windowMs: number;
  value: number;
  timestampMs: number;
}

/** The result of one scrape, shared by every replica stream (each encodes it with its own series ids). */
export interface Snapshot {
  status: ScrapeStatus;
  error: string;
  scrapeTimeMs: number;
  series: OutSeries[];
  podLabels: Record<string, string> | undefined;
}

export interface StreamOptions {
  pod: { namespace: string; name: string; uid: string };
  podLabels: () => Record<string, string>;
  intervalMs: number;
  credentials: () => grpc.ChannelCredentials;
  tokenFile: string | undefined;
  logger: Logger;
  onState: (replica: string, up: boolean) => void;
  onAck: (replica: string, ack: WireAck) => void;
}

const MAX_ID = 65535;

/**
 * One long-lived Report stream to one aggregator replica. Holds only the latest snapshot: a slow or dead
 * replica never delays the others and never grows memory. Reconnects with jittered exponential backoff and
 * sends the latest snapshot (with the definitions it needs, since ids are per stream) first.
 */
export class ReplicaStream {
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<WireReportRequest, WireAck> | undefined;
  private ids = new Map<string, number>();
  private latest: Snapshot | undefined;
  /** The last snapshot written, resent first on a new stream (the replica may have restarted empty). */
  private lastSent: Snapshot | undefined;
  private pendingLabels: Record<string, string> | undefined;
  private writable = false;
  private seq = 0;
  private backoffMs = 100;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  up = false;

  constructor(readonly target: string, private readonly serverName: string | undefined, private readonly opts: StreamOptions) {
    this.connect();
  }

  /** Offers the newest snapshot; sent now if the stream can take it, else kept (replacing any older one). */
  publish(s: Snapshot): void {
    if (s.podLabels) this.pendingLabels = s.podLabels;
    this.latest = s;
    if (this.writable) this.flush();
  }

  /** Sends a goodbye (the pod's series leave this replica at once) and closes; resolves within timeoutMs. */
  goodbye(timeoutMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const call = this.call;
    if (!call) {
      this.shutdown();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.shutdown();
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      call.once('status', done);
      call.once('error', done);
      call.write({ goodbye: {} } as WireReportRequest);
      call.end();
    });
  }

  private shutdown(): void {
    this.writable = false;
    this.call?.cancel();
    this.client?.close();
  }

  private connect(): void {
    if (this.closed) return;
    const { Client } = loadIngestCached();
    const options: grpc.ChannelOptions = { 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.use_local_subchannel_pool': 1 };
    if (this.serverName) options['grpc.ssl_target_name_override'] = this.serverName;
    this.client = new Client(this.target, this.opts.credentials(), options);
    const md = new grpc.Metadata();
    if (this.opts.tokenFile) {
      try {
        md.set('authorization', `Bearer ${readFileSync(this.opts.tokenFile, 'utf8').trim()}`);
      } catch (err) {
        this.opts.logger.warn({ replica: this.target, err: (err as Error).message }, 'cannot read the token file');
      }
    }
    const call = (this.client as unknown as { report(md: grpc.Metadata): grpc.ClientDuplexStream<WireReportRequest, WireAck> }).report(md);
    this.call = call;
    this.ids = new Map();
    call.on('data', (ack: WireAck) => {
      if (!this.up) {
        this.up = true;
        this.backoffMs = 100;
        this.opts.onState(this.target, true);
        this.opts.logger.info({ replica: this.target }, 'stream to aggregator up');
      }
      this.opts.onAck(this.target, ack);
    });
    call.on('drain', () => {
      this.writable = true;
      this.flush();
    });
    const onEnd = (err?: grpc.ServiceError) => {
      if (this.call !== call) return;
      this.call = undefined;
      this.writable = false;
      this.client?.close();
      if (this.up) {
        this.up = false;
        this.opts.onState(this.target, false);
      }
      if (this.closed) return;
      const delay = Math.round(this.backoffMs * (0.5 + Math.random()));
      this.backoffMs = Math.min(this.backoffMs * 2, 5000);
      this.opts.logger.warn({ replica: this.target, code: err ? grpc.status[err.code] : 'OK', err: err?.details, retryInMs: delay }, 'stream to aggregator ended; reconnecting');
      this.timer = setTimeout(() => this.connect(), delay);
    };
    call.on('error', onEnd);
    call.on('end', () => onEnd());
    call.write({ hello: { pod: { ...this.opts.pod, labels: this.opts.podLabels() }, interval_ms: this.opts.intervalMs, agent: 'metrics-relay-sidecar' } } as WireReportRequest);
    this.writable = true;
    this.pendingLabels = undefined; // the Hello carried the current labels
    this.latest ??= this.lastSent;
    this.flush();
  }

  private flush(): void {
    const s = this.latest;
    const call = this.call;
    if (!s || !call) return;
    this.latest = undefined;
    this.lastSent = s;
    const msg = this.encode(s);
    if (!msg) {
      // Ids exhausted by series churn: start a fresh stream (fresh id space) with this snapshot.
      this.latest = s;
      call.cancel();
      return;
    }
    this.writable = call.write(msg);
  }

  private encode(s: Snapshot): WireReportRequest | undefined {
    const defs: WireSeriesDef[] = [];
    const ids: number[] = new Array(s.series.length);
    const values: number[] = new Array(s.series.length);
    const timestamps: number[] = new Array(s.series.length);
    let anyOwnTime = false;
    for (let i = 0; i < s.series.length; i++) {
      const x = s.series[i]!;
      let id = this.ids.get(x.key);
      if (id === undefined) {
        id = this.ids.size;
        if (id > MAX_ID) return undefined;
        this.ids.set(x.key, id);
        defs.push({ id, name: x.name, labels: x.labels, kind: x.kind, window_ms: x.windowMs });
      }
      ids[i] = id;
      values[i] = x.value;
      timestamps[i] = x.timestampMs;
      if (x.timestampMs !== s.scrapeTimeMs) anyOwnTime = true;
    }
    const labels = this.pendingLabels;
    this.pendingLabels = undefined;
    return {
      snapshot: {
        seq: ++this.seq,
        status: s.status,
        error: s.error,
        scrape_time_ms: s.scrapeTimeMs,
        defs,
        ids,
        values,
        timestamps_ms: anyOwnTime ? timestamps : [],
        pod_labels: labels ? { labels } : null,
      },
    };
  }
}

let ingest: ReturnType<typeof loadIngest> | undefined;
function loadIngestCached(): ReturnType<typeof loadIngest> {
  return (ingest ??= loadIngest());
}

/**
 * The set of replica streams for --aggregator: a fixed host:port list, or one DNS name (a headless Service)
 * re-resolved every refreshMs — new addresses get a stream, vanished ones are closed.
 */
export class Replicas {
  readonly streams = new Map<string, ReplicaStream>();
  private timer: NodeJS.Timeout | undefined;
  private latest: Snapshot | undefined;

  constructor(private readonly spec: string, private readonly opts: StreamOptions, private readonly refreshMs = 10_000) {}

  async start(): Promise<void> {
    await this.refresh();
    if (this.dnsName()) {
      this.timer = setInterval(() => void this.refresh(), this.refreshMs);
      this.timer.unref();
    }
  }

  publish(s: Snapshot): void {
    this.latest = s;
    for (const r of this.streams.values()) r.publish(s);
    // Labels changes go out once; later snapshots need not repeat them.
    if (s.podLabels) this.latest = { ...s, podLabels: undefined };
  }

  async goodbye(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.streams.values()].map((r) => r.goodbye(timeoutMs)));
  }

  /** A single name that is not an IP: resolved via DNS. */
  private dnsName(): { host: string; port: string } | undefined {
    const parts = this.spec.split(',').map((p) => p.trim()).filter(Boolean);
    if (parts.length !== 1) return undefined;
    const i = parts[0]!.lastIndexOf(':');
    const host = parts[0]!.slice(0, i).replace(/^\[|\]$/g, '');
    if (i < 0 || isIP(host) || host === 'localhost') return undefined;
    return { host, port: parts[0]!.slice(i + 1) };
  }

  private async refresh(): Promise<void> {
    const dns = this.dnsName();
    let wanted: { target: string; serverName: string | undefined }[];
    if (dns) {
      try {
        const addrs = await lookup(dns.host, { all: true });
        const v4 = addrs.filter((a) => a.family === 4);
        wanted = (v4.length > 0 ? v4 : addrs).map((a) => ({ target: a.family === 6 ? `[${a.address}]:${dns.port}` : `${a.address}:${dns.port}`, serverName: dns.host }));
      } catch (err) {
        this.opts.logger.warn({ aggregator: this.spec, err: (err as Error).message }, 'cannot resolve the aggregator name; keeping the streams there are');
        return;
      }
    } else {
      wanted = this.spec.split(',').map((p) => ({ target: p.trim(), serverName: undefined })).filter((w) => w.target !== '');
    }
    const keep = new Set(wanted.map((w) => w.target));
    for (const [target, stream] of this.streams) {
      if (!keep.has(target)) {
        this.streams.delete(target);
        void stream.goodbye(1000);
        this.opts.logger.info({ replica: target }, 'aggregator replica gone from DNS; stream closed');
      }
    }
    for (const w of wanted) {
      if (this.streams.has(w.target)) continue;
      const stream = new ReplicaStream(w.target, w.serverName, this.opts);
      this.streams.set(w.target, stream);
      if (this.latest) stream.publish(this.latest);
    }
  }
}
