import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadIngest, NODE_AGENT, SERIES_ID_LIMIT, type WireAck, type WireReportRequest, type WireSeriesDef, type WireSnapshot } from '../../../common/src/proto.js';
import type { MemoryStore, Pod, SeriesDefinition } from '../store/memory-store.js';
import type { AggregatorMetrics } from '../self-metrics.js';
import { DEFAULT_LABEL_LIMITS, podLabelProblem, seriesLabelProblem, type LabelLimits } from './label-limits.js';
import { definitionBytes, stringBytes } from '../store/memory-estimate.js';
import type { WarmUp } from '../readiness.js';

const DEFAULT_INTERVAL_MS = 5000;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const MAX_UID_LENGTH = 128;
/** A scrape error is kept for the status page; longer text is cut. */
const MAX_ERROR_LENGTH = 1024;
/** A sidecar's error text as held and shown: at most MAX_ERROR_LENGTH characters. */
const clip = (error: string): string => (error.length > MAX_ERROR_LENGTH ? `${error.slice(0, MAX_ERROR_LENGTH)}...` : error);
/** A stream's definition table entry beyond the definition's strings (counted in the store's memory budget). */
const STREAM_DEF_BYTES = 100;

/** A definition the stream made that is not held: the snapshots that use its id have it refused, with `reason`. */
interface RefusedDefinition {
  name: string;
  reason: string;
  /** Counter label of metrics_relay_aggregator_rejected_reports_total. */
  cause: 'label_limit' | 'memory_budget';
}
type StreamDefinition = SeriesDefinition | RefusedDefinition;
const isRefused = (d: StreamDefinition): d is RefusedDefinition => 'reason' in d;

/** Invalid input on a stream: ends that stream with the given status; nothing of it is applied. */
class StreamError extends Error {
  constructor(readonly code: grpc.status, message: string, readonly reason: string) {
    super(message);
  }
}

/** The pod a stream's token is bound to (TokenReview of the projected ServiceAccount token). */
export interface BoundPod {
  namespace: string;
  name: string;
  uid: string;
}

/** A node agent's stream (its token's ServiceAccount is the node agents'): it reports for the pods on `node`. */
export interface BoundNode {
  node: string;
  /** The agent's own pod, namespace/name, for logs. */
  agent: string;
}

export type StreamIdentity = BoundPod | BoundNode;
const isNode = (id: StreamIdentity): id is BoundNode => 'node' in id;

/** Where a pod runs, from the Kubernetes API (cached); undefined when no such pod exists. */
export type PodPlacement = (namespace: string, name: string) => Promise<{ uid: string; nodeName: string } | undefined>;

/**
 * Authenticates a stream from its metadata. Resolves with the pod the caller may report for, or the node whose
 * pods it may report for; rejects with a StreamAuthError (UNAUTHENTICATED / UNAVAILABLE). Undefined
 * authenticator: no authentication (--standalone).
 */
export type StreamAuthenticator = (metadata: grpc.Metadata) => Promise<StreamIdentity>;

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
  /** Asked at each Hello: why a new stream cannot open now (the replica is near its memory limit), or undefined. */
  admitStream?: () => string | undefined;
  metrics: AggregatorMetrics;
  logger: Logger;
  warmUp: WarmUp;
  labelLimits?: LabelLimits;
  /** Sample times further ahead of this replica's clock are clamped to the receive time (--max-clock-skew). */
  maxClockSkewMs: number;
  /** --max-message-bytes, told to the sidecar in every Ack so it keeps its snapshots below it. */
  maxMessageBytes: number;
  /** Where pods run: a node agent's Hello is accepted only for a pod on its node. Required with node agents. */
  podPlacement?: PodPlacement;
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
  const labelLimits = opts.labelLimits ?? DEFAULT_LABEL_LIMITS;
  const maxClockSkewMs = opts.maxClockSkewMs;
  const streamsPerPod = new Map<string, number>();
  const placementOf: PodPlacement = opts.podPlacement ?? (() => Promise.reject(new Error('this aggregator has no pod lookup (node agents need the Kubernetes API)')));

  function report(call: grpc.ServerDuplexStream<WireReportRequest, WireAck>): void {
    const log = logger.child({ peer: call.getPeer() });
    // Messages are handled strictly in order; the first waits for the stream's authentication.
    const authed = opts.authenticate ? opts.authenticate(call.metadata) : Promise.resolve(undefined);
    // NOTE: registered before the queue's handlers, so a failed authentication ends the stream before any message is looked at.
    authed.catch((err: unknown) => {
      if (err instanceof StreamAuthError) finish(new StreamError(err.code, err.message, err.code === grpc.status.UNAUTHENTICATED ? 'unauthenticated' : 'auth_unavailable'));
      else finish(new StreamError(grpc.status.UNAVAILABLE, 'authentication failed', 'auth_unavailable'));
    });
    let queue: Promise<StreamIdentity | undefined> = authed.catch(() => undefined);
    let podKey: string | undefined;
    let windowStartMs = 0;
    let windowCount = 0;
    const defs = new Map<number, StreamDefinition>();
    /** Bytes this stream's definitions took from the store's memory budget; given back when it ends. */
    let defBytes = 0;
    // The last snapshot's ids and their resolved definitions: steady-state snapshots repeat them exactly.
    let lastIds: number[] = [];
    let lastResolved: SeriesDefinition[] = [];
    // When some of those ids name refused definitions: the positions kept, and why the others were refused.
    let lastKeep: number[] | undefined;
    let lastRefusals = new Map<string, string>();
    let lastRefusedCounts = new Map<RefusedDefinition['cause'], number>();
    let clampWarned = false;
    let pod: Pod | undefined;
    let done = false;
    metrics.streams.inc();

    const finish = (err?: StreamError): void => {
      if (done) return;
      done = true;
      metrics.streams.dec();
      warmUp.gone(call);
      store.releaseBytes(defBytes);
      defBytes = 0;
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
      queue = queue.then(async (bound) => {
        // A node agent's Hello waits for where its pod runs (cached by the informer, else one GET).
        let placement: Placement | undefined;
        if (bound && isNode(bound) && msg.body === 'hello' && msg.hello?.pod && !done) {
          try {
            placement = { found: await placementOf(msg.hello.pod.namespace, msg.hello.pod.name) };
          } catch (err) {
            finish(new StreamError(grpc.status.UNAVAILABLE, `cannot check where pod ${msg.hello.pod.namespace}/${msg.hello.pod.name} runs now: ${(err as Error).message}`, 'auth_unavailable'));
          }
        }
        handle(msg, bound, placement);
        return bound;
      });
    });

    function handle(msg: WireReportRequest, bound: StreamIdentity | undefined, placement: Placement | undefined): void {
      if (done) return;
      try {
        switch (msg.body) {
          case 'hello': {
            if (pod) throw new StreamError(grpc.status.INVALID_ARGUMENT, 'a second Hello on the same stream', 'invalid_message');
            const h = msg.hello!;
            const id = h.pod;
            if (!id || !DNS_LABEL.test(id.namespace) || id.namespace.length > 63 || id.name === '' || id.name.length > 253 || id.uid.length > MAX_UID_LENGTH) {
              throw new StreamError(grpc.status.INVALID_ARGUMENT, `Hello must name the pod (valid namespace, name and uid), got namespace=${JSON.stringify(id?.namespace.slice(0, 64) ?? '')} name=${JSON.stringify(id?.name.slice(0, 254) ?? '')}`, 'invalid_message');
            }
            const labelProblem = podLabelProblem(id.labels ?? {});
            if (labelProblem) throw new StreamError(grpc.status.INVALID_ARGUMENT, `Hello for pod ${id.namespace}/${id.name}: ${labelProblem}`, 'label_limit');
            if (bound && isNode(bound)) {
              const refusal = notOnNode(bound, id, placement);
              if (refusal) throw new StreamError(grpc.status.PERMISSION_DENIED, refusal, 'pod_not_on_node');
            } else if (bound && (bound.namespace !== id.namespace || bound.name !== id.name || (bound.uid !== '' && bound.uid !== id.uid))) {
              throw new StreamError(grpc.status.PERMISSION_DENIED, `this stream's token is bound to pod ${bound.namespace}/${bound.name} (uid ${bound.uid}); it may not report for pod ${id.namespace}/${id.name} (uid ${id.uid || 'none'})`, 'forged_identity');
            }
            const full = opts.admitStream?.();
            if (full) throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, full, 'memory_limit');
            const key = `${id.namespace}/${id.name}`;
            const open = streamsPerPod.get(key) ?? 0;
            if (open >= limits.maxStreamsPerPod) {
              throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `pod ${key} already has ${open} open streams on this aggregator (limit ${limits.maxStreamsPerPod})`, 'too_many_streams');
            }
            const over = store.admitPod(id.namespace, id.name, id.uid, id.labels ?? {});
            if (over) throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `pod ${key} cannot be held: ${over}`, 'memory_budget');
            streamsPerPod.set(key, open + 1);
            podKey = key;
            const intervalMs = h.interval_ms > 0 ? h.interval_ms : DEFAULT_INTERVAL_MS;
            pod = store.upsertPod(id.namespace, id.name, id.uid, { ...id.labels }, intervalMs, now(), h.agent === NODE_AGENT ? 'node agent' : 'sidecar');
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

    /** Holds a definition for the stream, charged to the memory budget (refused with a reason when it does not fit). */
    function define(id: number, d: StreamDefinition): void {
      const old = defs.get(id);
      if (old) {
        store.releaseBytes(streamCost(old));
        defBytes -= streamCost(old);
      }
      if (store.chargeBytes(streamCost(d))) defBytes += streamCost(d);
      else d = { name: d.name.length <= labelLimits.maxValueBytes ? d.name : '', reason: store.budgetReason, cause: 'memory_budget' };
      defs.set(id, d);
    }

    function applySnapshot(p: Pod, snap: WireSnapshot): Omit<WireAck, 'max_message_bytes'> {
      // Validate everything first: a bad snapshot must change nothing.
      const newDefs: [number, StreamDefinition][] = [];
      for (const d of snap.defs) newDefs.push([d.id, toDefinition(d, labelLimits)]);
      const lookup = (id: number): StreamDefinition | undefined => {
        for (let i = newDefs.length - 1; i >= 0; i--) if (newDefs[i]![0] === id) return newDefs[i]![1];
        return defs.get(id);
      };
      const podLabels = snap.pod_labels ? { ...snap.pod_labels.labels } : undefined;
      const labelProblem = podLabels && podLabelProblem(podLabels);
      if (labelProblem) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: ${labelProblem}`, 'label_limit');
      metrics.snapshots.inc({ status: snap.status });
      if (snap.status !== 'OK') {
        for (const [id, d] of newDefs) define(id, d);
        store.markFailed(p, clip(snap.error), snap.status === 'BREAKER_OPEN', now());
        if (podLabels) store.setPodLabels(p, podLabels);
        return { seq: snap.seq, accepted: 0, refused: 0, reason: '' };
      }
      const n = snap.ids.length;
      if (snap.values.length !== n) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: ${n} ids but ${snap.values.length} values`, 'invalid_message');
      if (snap.timestamps_ms.length !== 0 && snap.timestamps_ms.length !== n) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: ${n} ids but ${snap.timestamps_ms.length} timestamps`, 'invalid_message');
      const ids = snap.ids;
      if (newDefs.length > 0 || !sameIds(ids, lastIds)) {
        const seen = new Set<number>();
        for (let i = 0; i < n; i++) {
          if (!lookup(ids[i]!)) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: series id ${ids[i]} is not defined on this stream`, 'invalid_message');
          if (seen.has(ids[i]!)) throw new StreamError(grpc.status.INVALID_ARGUMENT, `snapshot ${snap.seq}: series id ${ids[i]} appears twice`, 'invalid_message');
          seen.add(ids[i]!);
        }
        for (const [id, d] of newDefs) define(id, d);
        resolveIds(ids);
      }
      if (podLabels) store.setPodLabels(p, podLabels);
      const received = now();
      const { scrapeMs, times } = clampTimes(p, snap, received);
      let values: ArrayLike<number> = snap.values;
      let sampleTimes = times;
      if (lastKeep) {
        values = lastKeep.map((i) => snap.values[i]!);
        sampleTimes = lastKeep.map((i) => times[i]!);
      }
      const result = store.replaceSeries(p, lastResolved, values, sampleTimes, scrapeMs, received, lastRefusals);
      // An OK snapshot's error says what the sidecar left out (e.g. trimmed to fit): the API repeats it.
      store.setLastError(p, clip(snap.error));
      metrics.samplesIngested.inc(result.accepted);
      let refused = result.refused;
      const reasons: string[] = [];
      if (result.refused > 0) {
        metrics.rejected.inc({ reason: result.cause }, result.refused);
        reasons.push(result.reason);
      }
      for (const [cause, count] of lastRefusedCounts) {
        metrics.rejected.inc({ reason: cause }, count);
        refused += count;
      }
      // The first refusal of each cause is the Ack's reason (the pod's 404s repeat them per metric name).
      if (lastRefusals.size > 0) reasons.unshift(...new Set(lastRefusals.values()));
      const reason = [...new Set(reasons)].slice(0, 3).join('; ');
      if (refused > 0) log.warn({ namespace: p.namespace, pod: p.name, refused, reason }, 'series refused');
      return { seq: snap.seq, accepted: result.accepted, refused, reason };
    }

    /** Resolves a snapshot's ids (all defined) to held definitions; refused ones are set aside with their reasons. */
    function resolveIds(ids: number[]): void {
      const resolved: SeriesDefinition[] = [];
      const keep: number[] = [];
      const refusals = new Map<string, string>();
      const counts = new Map<RefusedDefinition['cause'], number>();
      for (let i = 0; i < ids.length; i++) {
        const d = defs.get(ids[i]!)!;
        if (isRefused(d)) {
          counts.set(d.cause, (counts.get(d.cause) ?? 0) + 1);
          // A metric name too long to query is counted but not remembered.
          if (d.name !== '' && !refusals.has(d.name)) refusals.set(d.name, d.reason);
          continue;
        }
        resolved.push(d);
        keep.push(i);
      }
      lastIds = ids;
      lastResolved = resolved;
      lastKeep = keep.length < ids.length ? keep : undefined;
      lastRefusals = refusals;
      lastRefusedCounts = counts;
    }

    /**
     * Sample times are the aggregator's to judge: one further ahead of this replica's clock than --max-clock-skew
     * is clamped to the receive time and counted, so a pod cannot keep its values fresh after it stops reporting.
     */
    function clampTimes(p: Pod, snap: WireSnapshot, received: number): { scrapeMs: number; times: ArrayLike<number> } {
      const latest = received + maxClockSkewMs;
      let clamped = 0;
      let scrapeMs = snap.scrape_time_ms;
      if (scrapeMs > latest) scrapeMs = received;
      let times: ArrayLike<number>;
      if (snap.timestamps_ms.length === snap.ids.length && snap.ids.length > 0) {
        times = snap.timestamps_ms;
        for (let i = 0; i < times.length; i++) {
          if (times[i]! <= latest) continue;
          if (clamped++ === 0) times = Float64Array.from(snap.timestamps_ms);
          (times as Float64Array)[i] = received;
        }
      } else {
        times = constant(snap.ids.length, scrapeMs);
        if (scrapeMs !== snap.scrape_time_ms) clamped = snap.ids.length;
      }
      if (clamped > 0) {
        metrics.clampedTimes.inc({ reason: 'ahead_of_clock' }, clamped);
        if (!clampWarned) {
          clampWarned = true;
          log.warn({ namespace: p.namespace, pod: p.name, clamped, maxClockSkewMs }, 'sample times ahead of this replica\'s clock were clamped to the receive time (logged once per stream)');
        }
      }
      return { scrapeMs, times };
    }
  }

  return { service, implementation: { report } };
}

/** Where a node agent's Hello pod runs (found: undefined when no such pod exists). */
interface Placement {
  found: { uid: string; nodeName: string } | undefined;
}

/** Why a node agent may not report for pod `id`, or undefined when the pod runs on the agent's node. */
function notOnNode(bound: BoundNode, id: { namespace: string; name: string; uid: string }, placement: Placement | undefined): string | undefined {
  const pod = `${id.namespace}/${id.name}`;
  const rule = `the node agent ${bound.agent} of node ${bound.node} may report only for pods on that node`;
  const at = placement?.found;
  if (!at) return `${rule}; pod ${pod} does not exist`;
  if (id.uid === '' || at.uid !== id.uid) return `${rule}; pod ${pod} has uid ${at.uid}, not ${id.uid || 'none'} as reported`;
  if (at.nodeName !== bound.node) return `${rule}; pod ${pod} runs on ${at.nodeName ? `node ${at.nodeName}` : 'no node yet'}`;
  return undefined;
}

function toDefinition(d: WireSeriesDef, limits: LabelLimits): StreamDefinition {
  if (d.id >= SERIES_ID_LIMIT) throw new StreamError(grpc.status.INVALID_ARGUMENT, `series id ${d.id} is not below the limit ${SERIES_ID_LIMIT}`, 'invalid_message');
  if (d.name === '' || d.name.includes('/') || d.name.includes('%')) throw new StreamError(grpc.status.INVALID_ARGUMENT, `series id ${d.id}: invalid metric name ${JSON.stringify(d.name.slice(0, 256))}`, 'invalid_message');
  const labels = d.labels ?? {};
  // NOTE: a series over the byte limits is refused (in the Ack), not the stream: the pod's other series still count.
  const problem = seriesLabelProblem(d.name, labels, limits);
  if (problem) return { name: Buffer.byteLength(d.name) <= limits.maxValueBytes ? d.name : '', reason: problem, cause: 'label_limit' };
  const def: SeriesDefinition = { name: d.name, labels, kind: d.kind, windowMs: d.kind === 'RATE' ? d.window_ms : 0 };
  def.bytes = definitionBytes(def);
  return def;
}

/**
 * Budget bytes a stream's definition takes. A refusal for the budget itself costs nothing: it shares the name and
 * reason strings and is bounded by the ids a stream may use (SERIES_ID_LIMIT).
 */
function streamCost(d: StreamDefinition): number {
  if (!isRefused(d)) return STREAM_DEF_BYTES + d.bytes!;
  return d.cause === 'memory_budget' ? 0 : STREAM_DEF_BYTES + stringBytes(d.name) + stringBytes(d.reason);
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
