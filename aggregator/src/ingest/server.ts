import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadIngest, type WireAck, type WireReportRequest, type WireSeriesDef, type WireSnapshot } from '../../../common/src/proto.js';
import type { MemoryStore, Pod, SeriesDefinition } from '../store/memory-store.js';
import type { AggregatorMetrics } from '../self-metrics.js';

export const MAX_SERIES_ID = 65535;
const DEFAULT_INTERVAL_MS = 5000;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Invalid input on a stream: ends that stream with the given status; nothing of it is applied. */
class StreamError extends Error {
  constructor(readonly code: grpc.status, message: string, readonly reason: string) {
    super(message);
  }
}

/** Tracks streams for the readiness rule: ready once every pod heard of since start has delivered a snapshot. */
export class WarmUp {
  private readonly pending = new Set<object>();
  private heard = 0;
  private lastHelloMs = 0;
  private maxIntervalMs = 0;

  constructor(private readonly startMs: number, private readonly windowMs: number) {}

  hello(stream: object, intervalMs: number, nowMs: number): void {
    this.pending.add(stream);
    this.heard++;
    this.lastHelloMs = nowMs;
    this.maxIntervalMs = Math.max(this.maxIntervalMs, intervalMs);
  }

  reported(stream: object): void {
    this.pending.delete(stream);
  }

  gone(stream: object): void {
    this.pending.delete(stream);
  }

  /** Undefined when ready, else why not. */
  notReadyReason(nowMs: number): string | undefined {
    if (nowMs - this.startMs >= this.windowMs) return undefined;
    // NOTE: a new replica is ready early only when sidecars have found it and each delivered a full snapshot,
    // and no new sidecar connected for one scrape interval (the rest have had their chance to reconnect).
    if (this.heard > 0 && this.pending.size === 0 && nowMs - this.lastHelloMs >= this.maxIntervalMs) return undefined;
    return `warming up: ${this.pending.size} of ${this.heard} connected sidecar(s) have not sent a snapshot yet; ready at the latest ${Math.ceil((this.windowMs - (nowMs - this.startMs)) / 1000)}s from now`;
  }
}

/** The pod a stream's token is bound to (TokenReview of the projected ServiceAccount token). */
export interface BoundPod {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * Authenticates a stream from its metadata. Resolves with the pod the caller may report for; rejects with a
 * StreamAuthError (UNAUTHENTICATED / UNAVAILABLE). Undefined authenticator: no authentication (--standalone).
 */
export type StreamAuthenticator = (metadata: grpc.Metadata) => Promise<BoundPod>;

export class StreamAuthError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

export interface IngestLimits {
  /** Open streams one pod may hold on this replica (a sidecar needs one; two while reconnecting). */
  maxStreamsPerPod: number;
  /** Snapshots per second one stream may send (sidecars send one per interval). */
  maxReportsPerSecond: number;
}

export interface IngestOptions {
  store: MemoryStore;
  authenticate?: StreamAuthenticator;
  limits?: IngestLimits;
  metrics: AggregatorMetrics;
  logger: Logger;
  warmUp: WarmUp;
  /** --max-message-bytes, told to the sidecar in every Ack so it keeps its snapshots below it. */
  maxMessageBytes: number;
  now?: () => number;
}

/**
 * The gRPC Ingest service: applies each stream's snapshots to the store per the contract in ingest.proto.
 * A bad message ends only its own stream; what that pod had before and every other stream are untouched.
 */
export function createIngestService(opts: IngestOptions): { service: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const { store, metrics, logger, warmUp } = opts;
  const now = opts.now ?? Date.now;
  const { service } = loadIngest();

  const limits = opts.limits ?? { maxStreamsPerPod: 4, maxReportsPerSecond: 20 };
  const streamsPerPod = new Map<string, number>();

  function report(call: grpc.ServerDuplexStream<WireReportRequest, WireAck>): void {
    const log = logger.child({ peer: call.getPeer() });
    // Messages are handled strictly in order; the first waits for the stream's authentication.
    const authed = opts.authenticate ? opts.authenticate(call.metadata) : Promise.resolve(undefined);
    // NOTE: registered before the queue's handlers, so a failed authentication ends the stream before any message is looked at.
    authed.catch((err: unknown) => {
      if (err instanceof StreamAuthError) finish(new StreamError(err.code, err.message, err.code === grpc.status.UNAUTHENTICATED ? 'unauthenticated' : 'auth_unavailable'));
      else finish(new StreamError(grpc.status.UNAVAILABLE, 'authentication failed', 'auth_unavailable'));
    });
    let queue: Promise<BoundPod | undefined> = authed.catch(() => undefined);
    let podKey: string | undefined;
    let windowStartMs = 0;
    let windowCount = 0;
    const defs = new Map<number, SeriesDefinition>();
    // The last snapshot's ids and their resolved definitions: steady-state snapshots repeat them exactly.
    let lastIds: number[] = [];
    let lastResolved: SeriesDefinition[] = [];
    let pod: Pod | undefined;
    let done = false;
    metrics.streams.inc();

    const finish = (err?: StreamError): void => {
      if (done) return;
      done = true;
      metrics.streams.dec();
      warmUp.gone(call);
      if (podKey) {
        const left = (streamsPerPod.get(podKey) ?? 1) - 1;
        if (left <= 0) streamsPerPod.delete(podKey);
        else streamsPerPod.set(podKey, left);
      }
      if (err) {
        metrics.rejected.inc({ reason: err.reason });
        log.warn({ namespace: pod?.namespace, pod: pod?.name, code: grpc.status[err.code], err: err.message }, 'ingest stream rejected');
        call.emit('error', { code: err.code, details: err.message });
      } else {
        call.end();
      }
    };

    call.on('data', (msg: WireReportRequest) => {
      queue = queue.then((bound) => {
        handle(msg, bound);
        return bound;
      });
    });

    function handle(msg: WireReportRequest, bound: BoundPod | undefined): void {
      if (done) return;
      try {
        switch (msg.body) {
          case 'hello': {
            if (pod) throw new StreamError(grpc.status.INVALID_ARGUMENT, 'a second Hello on the same stream', 'invalid_message');
            const h = msg.hello!;
            const id = h.pod;
            if (!id || !DNS_LABEL.test(id.namespace) || id.name === '' || id.name.length > 253) {
              throw new StreamError(grpc.status.INVALID_ARGUMENT, `Hello must name the pod (valid namespace and name), got namespace=${JSON.stringify(id?.namespace ?? '')} name=${JSON.stringify(id?.name ?? '')}`, 'invalid_message');
            }
            if (bound && (bound.namespace !== id.namespace || bound.name !== id.name || (bound.uid !== '' && bound.uid !== id.uid))) {
              throw new StreamError(grpc.status.PERMISSION_DENIED, `this stream's token is bound to pod ${bound.namespace}/${bound.name} (uid ${bound.uid}); it may not report for pod ${id.namespace}/${id.name} (uid ${id.uid || 'none'})`, 'forged_identity');
            }
            const key = `${id.namespace}/${id.name}`;
            const open = streamsPerPod.get(key) ?? 0;
            if (open >= limits.maxStreamsPerPod) {
              throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `pod ${key} already has ${open} open streams on this aggregator (limit ${limits.maxStreamsPerPod})`, 'too_many_streams');
            }
            streamsPerPod.set(key, open + 1);
            podKey = key;
            const intervalMs = h.interval_ms > 0 ? h.interval_ms : DEFAULT_INTERVAL_MS;
            pod = store.upsertPod(id.namespace, id.name, id.uid, { ...id.labels }, intervalMs, now());
            warmUp.hello(call, intervalMs, now());
            log.info({ namespace: id.namespace, pod: id.name, intervalMs, agent: h.agent }, 'sidecar connected');
            return;
          }
          case 'snapshot': {
            if (!pod) throw new StreamError(grpc.status.INVALID_ARGUMENT, 'the first message of a stream must be a Hello', 'invalid_message');
            const t = now();
            if (t - windowStartMs >= 1000) {
              windowStartMs = t;
              windowCount = 0;
            }
            if (++windowCount > limits.maxReportsPerSecond) {
              throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `more than ${limits.maxReportsPerSecond} snapshots per second on one stream`, 'rate_limited');
            }
            call.write({ ...applySnapshot(pod, msg.snapshot!), max_message_bytes: opts.maxMessageBytes });
            warmUp.reported(call);
            return;
          }
          case 'goodbye': {
            if (pod) {
              store.deletePod(pod.namespace, pod.name, pod.uid);
              log.info({ namespace: pod.namespace, pod: pod.name }, 'sidecar said goodbye; its series are deleted');
            }
            finish();
            return;
          }
          default:
            throw new StreamError(grpc.status.INVALID_ARGUMENT, 'empty ReportRequest (no hello, snapshot or goodbye)', 'invalid_message');
        }
      } catch (err) {
        if (err instanceof StreamError) return finish(err);
        log.error({ err }, 'unexpected error on ingest stream');
        finish(new StreamError(grpc.status.INTERNAL, 'internal error', 'internal'));
      }
    }
    call.on('end', () => finish());
    call.on('error', () => finish());
    call.on('cancelled', () => finish());

    function applySnapshot(p: Pod, snap: WireSnapshot): WireAck {
      // Validate everything first: a bad snapshot must change nothing.
      const newDefs: [number, SeriesDefinition][] = [];
      for (const d of snap.defs) newDefs.push([d.id, toDefinition(d)]);
      const lookup = (id: number): SeriesDefinition | undefined => {
        for (let i = newDefs.length - 1; i >= 0; i--) if (newDefs[i]![0] === id) return newDefs[i]![1];
        return defs.get(id);
      };
      metrics.snapshots.inc({ status: snap.status });
      if (snap.status !== 'OK') {
        for (const [id, d] of newDefs) defs.set(id, d);
        store.markFailed(p, snap.error, snap.status === 'BREAKER_OPEN', now());
        if (snap.pod_labels) p.labels = { ...snap.pod_labels.labels };
        return { seq: snap.seq, accepted: 0, refused: 0, reason: '' };
      }
      const n = snap.ids.length;
      if (snap.values.length !== n) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: ${n} ids but ${snap.values.length} values`, 'invalid_message');
      if (snap.timestamps_ms.length !== 0 && snap.timestamps_ms.length !== n) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: ${n} ids but ${snap.timestamps_ms.length} timestamps`, 'invalid_message');
      const ids = snap.ids;
      let resolved = lastResolved;
      if (newDefs.length > 0 || !sameIds(ids, lastIds)) {
        resolved = new Array(n);
        const seen = new Set<number>();
        for (let i = 0; i < n; i++) {
          const def = lookup(ids[i]!);
          if (!def) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: series id ${ids[i]} is not defined on this stream`, 'invalid_message');
          if (seen.has(ids[i]!)) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: series id ${ids[i]} appears twice`, 'invalid_message');
          seen.add(ids[i]!);
          resolved[i] = def;
        }
        for (const [id, d] of newDefs) defs.set(id, d);
        lastIds = ids;
        lastResolved = resolved;
      }
      if (snap.pod_labels) p.labels = { ...snap.pod_labels.labels };
      const times = snap.timestamps_ms.length === n ? snap.timestamps_ms : constant(n, snap.scrape_time_ms);
      const result = store.replaceSeries(p, resolved, snap.values, times, snap.scrape_time_ms, now());
      // An OK snapshot's error says what the sidecar left out (e.g. trimmed to fit): the API repeats it.
      p.lastError = snap.error;
      metrics.samplesIngested.inc(result.accepted);
      if (result.refused > 0) {
        metrics.rejected.inc({ reason: 'series_limit' }, result.refused);
        log.warn({ namespace: p.namespace, pod: p.name, refused: result.refused, reason: result.reason }, 'series refused');
      }
      return { seq: snap.seq, accepted: result.accepted, refused: result.refused, reason: result.reason };
    }
  }

  return { service, implementation: { report } };
}

function toDefinition(d: WireSeriesDef): SeriesDefinition {
  if (d.id > MAX_SERIES_ID) throw new StreamError(grpc.status.INVALID_ARGUMENT, `series id ${d.id} is above the limit ${MAX_SERIES_ID}`, 'invalid_message');
  if (d.name === '' || d.name.includes('/') || d.name.includes('%')) throw new StreamError(grpc.status.INVALID_ARGUMENT, `series id ${d.id}: invalid metric name ${JSON.stringify(d.name)}`, 'invalid_message');
  return { name: d.name, labels: d.labels ?? {}, kind: d.kind, windowMs: d.kind === 'RATE' ? d.window_ms : 0 };
}

function sameIds(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function constant(n: number, v: number): ArrayLike<number> {
  return new Float64Array(n).fill(v);
}

export interface IngestServer {
  /** Binds and starts; resolves with the bound port. */
  start(host: string, port: number, credentials: grpc.ServerCredentials): Promise<number>;
  /** Stops accepting, ends open streams with UNAVAILABLE after graceMs. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export type IngestServerOptions = IngestOptions;

export function createIngestServer(opts: IngestServerOptions): IngestServer {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // NOTE: a max connection age makes sidecars reconnect now and then, so streams rebalance across replicas.
    'grpc.max_connection_age_ms': 30 * 60_000,
    'grpc.max_connection_age_grace_ms': 60_000,
  });
  const { service, implementation } = createIngestService(opts);
  server.addService(service, implementation);
  let stopped: Promise<void> | undefined;
  return {
    start: (host, port, credentials) =>
      new Promise((resolve, reject) => {
        server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    stop(graceMs = 2000) {
      stopped ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopped;
    },
  };
}
