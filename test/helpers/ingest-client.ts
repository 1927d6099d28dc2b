import * as grpc from '@grpc/grpc-js';
import { loadIngest, type Kind, type WireAck, type WireReportRequest, type ScrapeStatus } from '../../common/src/proto.js';

export interface TestSeries {
  name: string;
  labels?: Record<string, string>;
  value: number;
  kind?: Kind;
  windowMs?: number;
}

/** Where the stream ended: the gRPC status code and details, or undefined while open. */
export interface StreamEnd {
  code: grpc.status;
  details: string;
}

/**
 * A minimal test client of the Ingest service: one stream per instance, series ids assigned per name+labels,
 * definitions sent the first time a series appears. Mirrors what a sidecar sends, without the sidecar.
 */
export class TestReporter {
  private readonly stream: grpc.ClientDuplexStream<WireReportRequest, WireAck>;
  private readonly client: { close(): void };
  private readonly ids = new Map<string, number>();
  private seq = 0;
  readonly acks: WireAck[] = [];
  ended: StreamEnd | undefined;
  private waiters: (() => void)[] = [];

  constructor(target: string, metadata = new grpc.Metadata(), credentials = grpc.credentials.createInsecure()) {
    const { Client } = loadIngest();
    // NOTE: one connection per reporter, as real sidecars (separate processes) have.
    const client = new Client(target, credentials, { 'grpc.use_local_subchannel_pool': 1 }) as unknown as { report(md: grpc.Metadata): grpc.ClientDuplexStream<WireReportRequest, WireAck>; close(): void };
    this.client = client;
    this.stream = client.report(metadata);
    this.stream.on('data', (ack: WireAck) => {
      this.acks.push(ack);
      this.wake();
    });
    this.stream.on('error', (err: grpc.ServiceError) => {
      this.ended = { code: err.code, details: err.details };
      this.wake();
    });
    this.stream.on('end', () => {
      this.ended ??= { code: grpc.status.OK, details: '' };
      this.wake();
    });
    this.stream.on('status', (s: grpc.StatusObject) => {
      this.ended ??= { code: s.code, details: s.details };
      this.wake();
    });
  }

  hello(pod: { namespace: string; name: string; uid?: string; labels?: Record<string, string> }, intervalMs = 1000): this {
    this.stream.write({ hello: { pod: { uid: '', labels: {}, ...pod }, interval_ms: intervalMs, agent: 'test' } } as WireReportRequest);
    return this;
  }

  /** Sends one snapshot; resolves with its ack (or rejects with the stream's end). */
  async snapshot(series: TestSeries[], opts: { scrapeTimeMs?: number; status?: ScrapeStatus; error?: string; podLabels?: Record<string, string> } = {}): Promise<WireAck> {
    const defs = [];
    const ids: number[] = [];
    const values: number[] = [];
    for (const s of series) {
      const key = `${s.name}${JSON.stringify(s.labels ?? {})}`;
      let id = this.ids.get(key);
      if (id === undefined) {
        id = this.ids.size;
        this.ids.set(key, id);
        defs.push({ id, name: s.name, labels: s.labels ?? {}, kind: s.kind ?? 'GAUGE', window_ms: s.windowMs ?? 0 });
      }
      ids.push(id);
      values.push(s.value);
    }
    const seq = ++this.seq;
    this.send({
      snapshot: {
        seq,
        status: opts.status ?? 'OK',
        error: opts.error ?? '',
        scrape_time_ms: opts.scrapeTimeMs ?? Date.now(),
        defs,
        ids,
        values,
        timestamps_ms: [],
        pod_labels: opts.podLabels ? { labels: opts.podLabels } : null,
      },
    } as unknown as WireReportRequest);
    return this.ackFor(seq);
  }

  /** Writes any message as-is (for malformed-input tests). */
  send(msg: WireReportRequest): void {
    this.stream.write(msg);
  }

  goodbye(): void {
    this.stream.write({ goodbye: {} } as WireReportRequest);
  }

  /** Cancels the stream and closes the reporter's connection. */
  close(): void {
    this.stream.cancel();
    this.client.close();
  }

  /** Resolves when the server has ended the stream. */
  async endOfStream(timeoutMs = 5000): Promise<StreamEnd> {
    await this.until(() => this.ended !== undefined, timeoutMs);
    return this.ended!;
  }

  private async ackFor(seq: number, timeoutMs = 5000): Promise<WireAck> {
    await this.until(() => this.ended !== undefined || this.acks.some((a) => a.seq === seq), timeoutMs);
    const ack = this.acks.find((a) => a.seq === seq);
    if (!ack) throw new Error(`stream ended before ack ${seq}: ${grpc.status[this.ended!.code]} ${this.ended!.details}`);
    return ack;
  }

  private until(cond: () => boolean, timeoutMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs}ms`)), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
