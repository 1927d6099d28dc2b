import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/src/logger.js';
import { stopOnSignal } from '../../common/src/lifecycle.js';
import { loadSidecarConfig } from './config.js';
import type { BreakerState } from './scrape/breaker.js';
import { createPipeline } from './pipeline.js';
import { createGrpcDial } from './stream/dial.js';
import { createLabelsFileSource, type PodLabels } from './labels-file.js';
import { startOpsServer } from './ops-server.js';
import { createSidecarMetrics } from './self-metrics.js';

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
/** Time for the Goodbyes, within the 2s a pod's sidecar gets to exit. */
const GOODBYE_MS = 1000;

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
  const pipeline = createPipeline({
    options: cfg,
    pod: cfg.pod,
    agent: 'metrics-relay-sidecar',
    labels,
    dial: createGrpcDial({ insecure: cfg.insecure, caPem: cfg.caPem, caFile: cfg.caFile, tokenFile: cfg.tokenFile, readFile: readText, logger: logger.child({ component: 'stream' }) }),
    lookup: (host) => lookup(host, { all: true }),
    metrics,
    logger,
    onBreakerState: (state) => metrics.breakerState.set(BREAKER_GAUGE[state]),
    onStreamState: (replica, up) => metrics.streamUp.set({ replica }, up ? 1 : 0),
    onReplicaRemoved: (replica) => metrics.streamUp.remove({ replica }),
    onDelivered: (replica) => {
      if (ready) return;
      ready = true;
      logger.info({ replica }, 'ready: a scrape was delivered to an aggregator replica');
    },
  });
  metrics.breakerState.set(0);

  const ops = await startOpsServer({
    port: cfg.metricsPort,
    host: cfg.bindAddress,
    registry,
    notReady: () => (ready ? undefined : 'not ready: no scrape delivered to an aggregator replica yet'),
    notLive: () => pipeline.notLive(),
  });
  await pipeline.start();
  logger.info({ target: String(cfg.target), aggregator: cfg.aggregator, intervalMs: cfg.intervalMs, metrics: cfg.metrics, pod: `${cfg.pod.namespace}/${cfg.pod.name}`, metricsPort: ops.port }, 'sidecar started');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await pipeline.stop(GOODBYE_MS);
      await ops.close();
    })());
  stopOnSignal(stop, logger, 2000);
  // NOTE: after stopOnSignal: whoever reads this line may send SIGTERM at once, and until a handler is installed
  // the signal's default action kills the process.
  process.stdout.write(`${JSON.stringify({ msg: 'ports', metrics: ops.port })}\n`);
  return stop;
}
