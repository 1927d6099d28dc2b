import type { Logger } from 'pino';
import type { AggregatorSpec } from '../../../common/src/sidecar-options.js';
import type { Snapshot } from './snapshot.js';

/** The part of a replica stream the set drives (ReplicaStream implements it). */
export interface Replica {
  start(): void;
  publish(s: Snapshot): void;
  goodbye(timeoutMs: number): Promise<void>;
  stop(): void;
}

/** Resolves a name to addresses (dns.promises.lookup with all: true). */
export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface AggregatorStreamsOptions {
  spec: AggregatorSpec;
  lookup: Lookup;
  /** How often a DNS name is resolved again (10s). */
  refreshMs: number;
  /** A stream to `target` (host:port); serverName is the DNS name for TLS, when found by DNS. */
  createReplica(target: string, serverName: string | undefined): Replica;
  /** A replica left the set (gone from DNS). */
  onRemoved(target: string): void;
  logger: Logger;
}

/** Every aggregator replica's stream; each gets every snapshot. */
export interface AggregatorStreams {
  /** Opens the streams (resolving the name first, if any); then keeps the set in step with DNS. */
  start(): Promise<void>;
  /** Hands the snapshot to every replica (each keeps only its latest). Never blocks. */
  publish(s: Snapshot): void;
  /** Goodbye to every replica at once, then no more refreshes; resolves within timeoutMs. */
  goodbye(timeoutMs: number): Promise<void>;
  /** Closes every stream without a Goodbye (the pod's values stay and age), then no more refreshes. */
  close(): void;
}

/**
 * The set of replica streams for --aggregator. A DNS name (a headless Service) is resolved every refreshMs: new
 * addresses get a stream, which starts with the latest snapshot; vanished ones are closed without a Goodbye. When
 * resolution fails the streams there are stay. IPv4 addresses are used when there are any (a dual-stack
 * headless Service lists each replica once per family).
 */
export function createAggregatorStreams(opts: AggregatorStreamsOptions): AggregatorStreams {
  const replicas = new Map<string, Replica>();
  let latest: Snapshot | undefined;
  let timer: NodeJS.Timeout | undefined;
  let resolveFailing = false;
  let stopped = false;

  const add = (target: string, serverName: string | undefined): void => {
    const r = opts.createReplica(target, serverName);
    replicas.set(target, r);
    r.start();
    if (latest) r.publish(latest);
  };

  const refresh = async (host: string, port: number): Promise<void> => {
    let addrs: { address: string; family: number }[];
    try {
      addrs = await opts.lookup(host);
    } catch (err) {
      if (!resolveFailing) opts.logger.warn({ aggregator: host, err: (err as Error).message }, 'cannot resolve the aggregator name; keeping the streams there are');
      resolveFailing = true;
      return;
    }
    if (stopped) return;
    resolveFailing = false;
    const v4 = addrs.filter((a) => a.family === 4);
    const wanted = new Set((v4.length > 0 ? v4 : addrs).map((a) => (a.family === 6 ? `[${a.address}]:${port}` : `${a.address}:${port}`)));
    for (const [target, r] of replicas) {
      if (wanted.has(target)) continue;
      replicas.delete(target);
      r.stop();
      opts.onRemoved(target);
      opts.logger.info({ replica: target }, 'aggregator replica gone from DNS; stream closed');
    }
    for (const target of wanted) {
      if (replicas.has(target)) continue;
      opts.logger.info({ replica: target, aggregator: host }, 'aggregator replica found');
      add(target, host);
    }
  };

  return {
    async start() {
      const spec = opts.spec;
      if (spec.kind === 'static') {
        for (const t of spec.targets) add(t, undefined);
        return;
      }
      await refresh(spec.host, spec.port);
      timer = setInterval(() => void refresh(spec.host, spec.port), opts.refreshMs);
    },
    publish(s) {
      latest = s;
      for (const r of replicas.values()) r.publish(s);
    },
    async goodbye(timeoutMs) {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...replicas.values()].map((r) => r.goodbye(timeoutMs)));
    },
    close() {
      stopped = true;
      clearInterval(timer);
      for (const r of replicas.values()) r.stop();
    },
  };
}
