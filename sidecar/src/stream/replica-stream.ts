import type { Logger } from 'pino';
import type { WireAck, WireReportRequest } from '../../../common/src/proto.js';
import type { Backoff } from './backoff.js';
import type { PodLabels } from '../labels-file.js';
import { familyList } from '../series/builder.js';
import { SnapshotEncoder, type Snapshot } from './snapshot.js';

/** The client side of one Report stream, as ReplicaStream uses it (a grpc-js ClientDuplexStream fits). */
export interface IngestCall {
  /** Queues a message; false when the transport wants a 'drain' before more. */
  write(msg: WireReportRequest): boolean;
  end(): void;
  cancel(): void;
  on(event: 'data', listener: (ack: WireAck) => void): unknown;
  on(event: 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** The stream's final status; emitted once, OK or not. */
  on(event: 'status', listener: (status: { code: number; details: string }) => void): unknown;
}

/** Opens a new Report stream (new connection) to a replica; close() releases the connection. */
export type Dial = (target: string, serverName: string | undefined) => { call: IngestCall; close(): void };

/** The pod a stream reports for (its Hello). */
export interface HelloInfo {
  pod: { namespace: string; name: string; uid: string };
  intervalMs: number;
  agent: string;
}

export interface ReplicaStreamOptions {
  dial: Dial;
  hello: HelloInfo;
  /** The pod's labels before the first scrape (later ones travel with the snapshots). */
  initialLabels: PodLabels;
  backoff: Backoff;
  logger: Logger;
  /** The stream came up (its first Ack) or went down. Called on changes only. */
  onState(up: boolean): void;
  /** The replica acknowledged a snapshot with status OK. */
  onDelivered(): void;
  /** The replica's message limit until its first Ack tells it (--max-message-bytes). */
  maxMessageBytes: number;
  /** `series` were left out of a snapshot to fit the replica's message limit. */
  onTrimmed(series: number): void;
}

/**
 * One long-lived Report stream to one aggregator replica. It holds only the latest snapshot: at most one
 * snapshot is in flight (written, not yet acknowledged) and one waits; a newer snapshot replaces the waiting
 * one. So a slow or dead replica never delays the others and never grows memory. On any end of the stream it
 * reconnects after a backoff and, right after the Hello, sends the newest snapshot it has (with every definition
 * it references, as ids are per stream): a restarted replica is full again at once. A snapshot over the replica's
 * message limit (from its Acks) is trimmed to fit (SnapshotEncoder), logged once per change of what is cut.
 */
export class ReplicaStream {
  private conn: { call: IngestCall; close(): void } | undefined;
  private encoder: SnapshotEncoder | undefined;
  /** Newest snapshot not yet written on the current stream. */
  private waiting: Snapshot | undefined;
  /** Newest snapshot written; sent again first on a new stream. */
  private sent: Snapshot | undefined;
  /** seq and status of the snapshot in flight. */
  private inFlight: { seq: number; ok: boolean } | undefined;
  private writable = false;
  private up = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private downLogged = false;
  private maxMessageBytes: number;
  /** What the last trim cut ('' when none), so the log tells each change once. */
  private lastTrim = '';

  constructor(readonly target: string, private readonly serverName: string | undefined, private readonly opts: ReplicaStreamOptions) {
    this.maxMessageBytes = opts.maxMessageBytes;
  }

  /** Opens the stream. */
  start(): void {
    this.connect();
  }

  /** Offers the newest snapshot: sent now if the stream can take it, else kept (replacing an older one). */
  publish(s: Snapshot): void {
    if (this.closed) return;
    this.waiting = s;
    this.pump();
  }

  /**
   * Sends a Goodbye (the pod's series leave this replica at once) and closes. Resolves when the replica ended
   * the stream, or after timeoutMs. Idempotent; no reconnect after it.
   */
  goodbye(timeoutMs: number): Promise<void> {
    const conn = this.close();
    if (!conn) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        conn.call.cancel();
        conn.close();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      conn.call.on('status', done);
      conn.call.write({ goodbye: {} });
      conn.call.end();
    });
  }

  /** Closes without a Goodbye (the replica left the set; its data does not matter any more). Idempotent. */
  stop(): void {
    const conn = this.close();
    conn?.call.cancel();
    conn?.close();
  }

  private close(): { call: IngestCall; close(): void } | undefined {
    if (this.closed) return undefined;
    this.closed = true;
    clearTimeout(this.timer);
    const conn = this.conn;
    this.conn = undefined;
    this.setUp(false);
    return conn;
  }

  private connect(): void {
    if (this.closed) return;
    let conn: { call: IngestCall; close(): void };
    try {
      conn = this.opts.dial(this.target, this.serverName);
    } catch (err) {
      this.retry(undefined, (err as Error).message);
      return;
    }
    this.conn = conn;
    const labels = (this.waiting ?? this.sent)?.podLabels ?? this.opts.initialLabels;
    this.encoder = new SnapshotEncoder(labels);
    this.inFlight = undefined;
    // The newest snapshot goes first on every new stream: the replica may have restarted empty.
    this.waiting ??= this.sent;
    const { call } = conn;
    call.on('data', (ack: WireAck) => {
      if (this.conn !== conn) return;
      this.opts.backoff.reset();
      this.setUp(true);
      if (ack.max_message_bytes) this.maxMessageBytes = ack.max_message_bytes;
      if (ack.refused > 0) this.opts.logger.warn({ replica: this.target, refused: ack.refused, reason: ack.reason }, 'aggregator refused series');
      if (this.inFlight?.seq === ack.seq) {
        if (this.inFlight.ok) this.opts.onDelivered();
        this.inFlight = undefined;
        this.pump();
      }
    });
    call.on('drain', () => {
      if (this.conn !== conn) return;
      this.writable = true;
      this.pump();
    });
    let ended = false;
    const onEnd = (code: number | undefined, details: string): void => {
      if (ended) return;
      ended = true;
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.writable = false;
      conn.close();
      this.retry(code, details);
    };
    call.on('error', (err: Error & { code?: number; details?: string }) => onEnd(err.code, err.details ?? err.message));
    call.on('status', (s) => onEnd(s.code, s.details));
    const { pod, intervalMs, agent } = this.opts.hello;
    this.writable = call.write({ hello: { pod: { ...pod, labels }, interval_ms: intervalMs, agent } });
    this.pump();
  }

  /** Logs the end of a stream (once per state change) and dials again after a backoff. */
  private retry(code: number | undefined, details: string): void {
    const delayMs = this.opts.backoff.next();
    if (this.up || !this.downLogged) {
      this.opts.logger.warn({ replica: this.target, code, err: details, retryInMs: delayMs }, this.up ? 'stream to aggregator replica down; reconnecting' : 'cannot reach aggregator replica; retrying');
      this.downLogged = true;
    } else {
      this.opts.logger.debug({ replica: this.target, code, err: details, retryInMs: delayMs }, 'reconnect failed');
    }
    this.setUp(false);
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private pump(): void {
    const call = this.conn?.call;
    const s = this.waiting;
    if (!call || !s || !this.writable || this.inFlight) return;
    this.waiting = undefined;
    this.sent = s;
    const { snapshot, trimmed } = this.encoder!.encode(s, this.maxMessageBytes);
    if (trimmed) this.opts.onTrimmed(trimmed.series);
    const trim = trimmed ? familyList(trimmed) : '';
    if (trim !== this.lastTrim) {
      this.lastTrim = trim;
      if (trimmed) this.opts.logger.warn({ replica: this.target, trimmed: trimmed.series, families: trim, maxMessageBytes: this.maxMessageBytes }, snapshot.error);
      else this.opts.logger.info({ replica: this.target }, 'snapshots fit the aggregator\'s message limit again');
    }
    this.inFlight = { seq: snapshot.seq, ok: s.status === 'OK' };
    this.writable = call.write({ snapshot });
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (up) {
      this.downLogged = false;
      this.opts.logger.info({ replica: this.target }, 'stream to aggregator replica up');
    }
    this.opts.onState(up);
  }
}
