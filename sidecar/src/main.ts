import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/src/logger.js';
import { stopOnSignal } from '../../common/src/lifecycle.js';
import { loadSidecarConfig } from './config.js';
import { createBackoff } from './stream/backoff.js';
import { createScrapeBreaker, type BreakerState } from './scrape/breaker.js';
import { createGrpcDial } from './stream/dial.js';
import { createLabelsFileSource, type PodLabels } from './labels-file.js';
import { startOpsServer } from './ops-server.js';
import { ReplicaStream } from './stream/replica-stream.js';
import { createAggregatorStreams } from './stream/aggregator-streams.js';
import { createScrape } from './scrape/scrape.js';
import { createScrapeLoop } from './scrape/loop.js';
import { compileSelection } from './series/select.js';
import { SeriesBuilder } from './series/builder.js';
import { createSidecarMetrics } from './self-metrics.js';

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
/** Time for the Goodbyes, within the 2s a pod's sidecar gets to exit. */
const GOODBYE_MS = 1000;
const DNS_REFRESH_MS = 10_000;

/**
 * `metrics-relay sidecar`: the composition root. Prints `{"msg":"ports","metrics":<port>}` on stdout once the
 * metrics port listens; on SIGTERM says Goodbye to every replica and exits 0 within 2s. Resolves with the stop
 * function (the same one SIGTERM runs).
 */
export async function runSidecar(argv: string[], env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const cfg = loadSidecarConfig(argv, env);
  const logger = createLogger('metrics-relay-sidecar', cfg.logLevel);
  const registry = new Registry();
  const metrics = createSidecarMetrics(registry);
  const readText = (path: string) => readFileSync(path, 'utf8');

  const fixedLabels: PodLabels = cfg.podLabels;
  const labels = cfg.podLabelsFile ? createLabelsFileSource(cfg.podLabelsFile, readText, logger.child({ component: 'labels' })) : () => fixedLabels;

  let ready = false;
  const dial = createGrpcDial({ insecure: cfg.insecure, caPem: cfg.caPem, caFile: cfg.caFile, tokenFile: cfg.tokenFile, readFile: readText, logger: logger.child({ component: 'stream' }) });
  const replicas = createAggregatorStreams({
    spec: cfg.aggregator,
    lookup: (host) => lookup(host, { all: true }),
    refreshMs: DNS_REFRESH_MS,
    logger: logger.child({ component: 'replicas' }),
    onRemoved: (replica) => metrics.streamUp.remove({ replica }),
    createReplica: (target, serverName) => {
      metrics.streamUp.set({ replica: target }, 0);
      return new ReplicaStream(target, serverName, {
        dial,
        hello: { pod: cfg.pod, intervalMs: cfg.intervalMs, agent: 'metrics-relay-sidecar' },
        initialLabels: labels(),
        // NOTE: capped at one interval, so a restarted replica is full again within one interval of coming back.
        backoff: createBackoff(100, Math.min(5000, cfg.intervalMs)),
        logger: logger.child({ component: 'stream' }),
        onState: (up) => metrics.streamUp.set({ replica: target }, up ? 1 : 0),
        maxMessageBytes: cfg.maxMessageBytes,
        onTrimmed: (series) => metrics.seriesDropped.inc({ reason: 'snapshot_too_large' }, series),
        onDelivered: () => {
          if (ready) return;
          ready = true;
          logger.info({ replica: target }, 'ready: a scrape was delivered to an aggregator replica');
        },
      });
    },
  });

  const limits = { maxSeries: cfg.maxSeries, maxLabelNameBytes: cfg.maxLabelNameBytes, maxLabelValueBytes: cfg.maxLabelValueBytes, maxLabelsPerSeries: cfg.maxLabelsPerSeries };
  const builder = new SeriesBuilder(cfg.rateWindowMs, limits);
  const breakerLog = logger.child({ component: 'breaker' });
  const breaker = createScrapeBreaker(createScrape({ target: cfg.target, timeoutMs: cfg.timeoutMs, maxBodyBytes: cfg.maxBodyBytes, select: compileSelection(cfg.metrics), budget: builder.budget }), {
    failures: cfg.breakerFailures,
    resetMs: cfg.breakerResetMs,
    onState: (state) => {
      metrics.breakerState.set(BREAKER_GAUGE[state]);
      if (state === 'open') breakerLog.warn({ failures: cfg.breakerFailures, retryInMs: cfg.breakerResetMs }, 'scrape breaker open: the pod is reported stale until a scrape succeeds');
      else if (state === 'half-open') breakerLog.info('scrape breaker half-open: trying one scrape');
      else breakerLog.info('scrape breaker closed: scrapes succeed again');
    },
  });
  metrics.breakerState.set(0);

  const loop = createScrapeLoop({
    intervalMs: cfg.intervalMs,
    breaker,
    builder,
    labels,
    publish: (s) => replicas.publish(s),
    metrics,
    logger: logger.child({ component: 'scrape', target: String(cfg.target) }),
    limits,
  });

  const ops = await startOpsServer({
    port: cfg.metricsPort,
    host: cfg.bindAddress,
    registry,
    notReady: () => (ready ? undefined : 'not ready: no scrape delivered to an aggregator replica yet'),
    notLive: () => loop.notLive(),
  });
  await replicas.start();
  loop.start();
  logger.info({ target: String(cfg.target), aggregator: cfg.aggregator, intervalMs: cfg.intervalMs, metrics: cfg.metrics, pod: `${cfg.pod.namespace}/${cfg.pod.name}`, metricsPort: ops.port }, 'sidecar started');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      loop.stop();
      // Goodbye first: the pod's series leave every replica at once.
      await replicas.goodbye(GOODBYE_MS);
      breaker.shutdown();
      await ops.close();
    })());
  stopOnSignal(stop, logger, 2000);
  // NOTE: after stopOnSignal: whoever reads this line may send SIGTERM at once, and until a handler is installed
  // the signal's default action kills the process.
  process.stdout.write(`${JSON.stringify({ msg: 'ports', metrics: ops.port })}\n`);
  return stop;
}
