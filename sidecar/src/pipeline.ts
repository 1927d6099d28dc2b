import type { Logger } from 'pino';
import type { SidecarOptions } from '../../common/src/sidecar-options.js';
import type { PodLabels } from './labels-file.js';
import { createScrapeBreaker, type BreakerState } from './scrape/breaker.js';
import { createScrape, ScrapeError, type LargeBodyBudget } from './scrape/scrape.js';
import { createScrapeLoop } from './scrape/loop.js';
import { compileSelection } from './series/select.js';
import { SeriesBuilder } from './series/builder.js';
import type { ScrapeMetrics } from './self-metrics.js';
import { createAggregatorStreams, type Lookup } from './stream/aggregator-streams.js';
import { createBackoff } from './stream/backoff.js';
import { ReplicaStream, type Dial } from './stream/replica-stream.js';

const DNS_REFRESH_MS = 10_000;

/** What one pod's scrape-to-stream path needs beside its options. */
export interface PipelineOptions {
  options: SidecarOptions;
  pod: { namespace: string; name: string; uid: string };
  /** Hello.agent: who reports (logs, and the aggregator's 404s name it). */
  agent: string;
  /** The pod's labels now (same object while unchanged). */
  labels(): PodLabels;
  dial: Dial;
  lookup: Lookup;
  metrics: ScrapeMetrics;
  logger: Logger;
  /** Large bodies held at once, shared with the other pods of the process (the node agent's). */
  bodies?: LargeBodyBudget;
  /** A failed scrape's message as sent to the aggregators (the node agent says whom it could not reach). */
  describeFailure?(err: ScrapeError): string;
  onBreakerState?(state: BreakerState): void;
  onStreamState?(replica: string, up: boolean): void;
  onReplicaRemoved?(replica: string): void;
  /** A scrape with status OK was acknowledged by a replica. */
  onDelivered?(replica: string): void;
}

/** One pod's scrape → parse → select → rate → stream path. */
export interface Pipeline {
  /** Opens the replica streams (resolving the aggregator name first) and starts scraping. */
  start(): Promise<void>;
  /**
   * Stops scraping and says Goodbye to every replica (the pod's series leave at once), within goodbyeMs; without
   * goodbyeMs only closes the streams (the pod lives on: its values age, and whoever scrapes it next replaces them).
   */
  stop(goodbyeMs?: number): Promise<void>;
  /** Undefined while scrapes start on time, else why not. */
  notLive(): string | undefined;
}

/**
 * Builds the path for one pod: the sidecar runs one, the node agent one per pod on its node. Everything in it is
 * the pod's own (breaker, series caps, streams), so a slow or hostile app costs only its own values.
 */
export function createPipeline(p: PipelineOptions): Pipeline {
  const o = p.options;
  const replicas = createAggregatorStreams({
    spec: o.aggregator,
    lookup: p.lookup,
    refreshMs: DNS_REFRESH_MS,
    logger: p.logger.child({ component: 'replicas' }),
    onRemoved: (replica) => p.onReplicaRemoved?.(replica),
    createReplica: (target, serverName) => {
      p.onStreamState?.(target, false);
      return new ReplicaStream(target, serverName, {
        dial: p.dial,
        hello: { pod: p.pod, intervalMs: o.intervalMs, agent: p.agent },
        initialLabels: p.labels(),
        // NOTE: capped at one interval, so a restarted replica is full again within one interval of coming back.
        backoff: createBackoff(100, Math.min(5000, o.intervalMs)),
        logger: p.logger.child({ component: 'stream' }),
        onState: (up) => p.onStreamState?.(target, up),
        maxMessageBytes: o.maxMessageBytes,
        onTrimmed: (series) => p.metrics.seriesDropped.inc({ reason: 'snapshot_too_large' }, series),
        onDelivered: () => p.onDelivered?.(target),
      });
    },
  });

  const limits = { maxSeries: o.maxSeries, maxLabelNameBytes: o.maxLabelNameBytes, maxLabelValueBytes: o.maxLabelValueBytes, maxLabelsPerSeries: o.maxLabelsPerSeries };
  const builder = new SeriesBuilder(o.rateWindowMs, limits);
  const scrape = createScrape({ target: o.target, timeoutMs: o.timeoutMs, maxBodyBytes: o.maxBodyBytes, select: compileSelection(o.metrics), budget: builder.budget, ...(p.bodies ? { bodies: p.bodies } : {}) });
  const describe = p.describeFailure;
  const breakerLog = p.logger.child({ component: 'breaker' });
  const breaker = createScrapeBreaker(
    describe
      ? () => scrape().catch((err: unknown) => Promise.reject(err instanceof ScrapeError ? new ScrapeError(err.reason, describe(err)) : err))
      : scrape,
    {
      failures: o.breakerFailures,
      resetMs: o.breakerResetMs,
      onState: (state) => {
        p.onBreakerState?.(state);
        if (state === 'open') breakerLog.warn({ failures: o.breakerFailures, retryInMs: o.breakerResetMs }, 'scrape breaker open: the pod is reported stale until a scrape succeeds');
        else if (state === 'half-open') breakerLog.info('scrape breaker half-open: trying one scrape');
        else breakerLog.info('scrape breaker closed: scrapes succeed again');
      },
    },
  );

  const loop = createScrapeLoop({
    intervalMs: o.intervalMs,
    breaker,
    builder,
    labels: p.labels,
    publish: (s) => replicas.publish(s),
    metrics: p.metrics,
    logger: p.logger.child({ component: 'scrape', target: String(o.target) }),
    limits,
  });

  return {
    async start() {
      await replicas.start();
      loop.start();
    },
    async stop(goodbyeMs) {
      loop.stop();
      // The streams before the breaker: a Goodbye takes the pod's series off every replica at once.
      if (goodbyeMs === undefined) replicas.close();
      else await replicas.goodbye(goodbyeMs);
      breaker.shutdown();
    },
    notLive: () => loop.notLive(),
  };
}
