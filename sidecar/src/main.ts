import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import CircuitBreaker from 'opossum';
import { createLogger } from '../../common/src/logger.js';
import { stopOnSignal } from '../../common/src/lifecycle.js';
import { loadSidecarConfig } from './config.js';
import { decodeBody, formatFromContentType, parseExposition, ParseError, type Family } from './parse/exposition.js';
import { scrapeOnce, ScrapeError } from './scrape.js';
import { compileSelection } from './select.js';
import { SeriesBuilder } from './series.js';
import { parseLabelsFile } from './labels-file.js';
import { Replicas, type Snapshot } from './replicas.js';
import { createSidecarMetrics } from './self-metrics.js';

/** `metrics-relay sidecar`: the composition root. Returns a stop function (also wired to SIGTERM). */
export async function runSidecar(argv: string[], env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const cfg = loadSidecarConfig(argv, env);
  const logger = createLogger('metrics-relay-sidecar', cfg.logLevel);
  const metrics = createSidecarMetrics();
  const select = compileSelection(cfg.metrics);
  const builder = new SeriesBuilder(cfg.rateWindowMs, cfg.maxSeries);

  let podLabels = { ...cfg.podLabels, ...readLabels(cfg.podLabelsFile) };
  let ready = false;
  let lastDropped = 0;

  const credentials = (): grpc.ChannelCredentials =>
    cfg.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(cfg.caPem ? Buffer.from(cfg.caPem) : null);
  const replicas = new Replicas(cfg.aggregator, {
    pod: cfg.pod,
    podLabels: () => podLabels,
    intervalMs: cfg.intervalMs,
    credentials,
    tokenFile: cfg.tokenFile,
    logger: logger.child({ component: 'stream' }),
    onState: (replica, up) => metrics.streamUp.set({ replica }, up ? 1 : 0),
    onAck: (replica, ack) => {
      if (!ready && ack.accepted > 0) {
        ready = true;
        logger.info({ replica }, 'first values delivered; ready');
      }
      if (ack.refused > 0) logger.warn({ replica, refused: ack.refused, reason: ack.reason }, 'aggregator refused series');
    },
  });

  // Scrape + parse inside the breaker, so malformed bodies count as failures as much as dead apps do.
  const scrapeAndParse = async (): Promise<Family[]> => {
    const res = await scrapeOnce(cfg.target, cfg.timeoutMs, cfg.maxBodyBytes);
    try {
      return parseExposition(decodeBody(res.body), formatFromContentType(res.contentType), select);
    } catch (err) {
      if (err instanceof ParseError) throw new ScrapeError('parse', `GET ${cfg.target}: ${err.message}`);
      throw err;
    }
  };
  // NOTE: opens when every scrape of the last `breakerFailures` intervals failed: opossum keeps a rolling
  // window of one bucket per interval and opens above a 99% error rate once it has that many scrapes.
  const breaker = new CircuitBreaker(scrapeAndParse, {
    timeout: false,
    errorThresholdPercentage: 99,
    volumeThreshold: cfg.breakerFailures,
    rollingCountTimeout: cfg.intervalMs * cfg.breakerFailures,
    rollingCountBuckets: cfg.breakerFailures,
    resetTimeout: Math.max(cfg.intervalMs * 3, 3000),
  });
  const breakerState = (v: number, what: string) => () => {
    metrics.breakerState.set(v);
    logger[v === 0 ? 'info' : 'warn']({ target: String(cfg.target) }, `scrape breaker ${what}`);
  };
  breaker.on('open', breakerState(2, 'open: values are reported stale until a scrape succeeds'));
  breaker.on('halfOpen', breakerState(1, 'half-open: trying one scrape'));
  breaker.on('close', breakerState(0, 'closed'));
  metrics.breakerState.set(0);

  const scrape = async (): Promise<void> => {
    const started = Date.now();
    const end = metrics.scrapeDuration.startTimer();
    const labelsNow = { ...cfg.podLabels, ...readLabels(cfg.podLabelsFile) };
    const labelsChanged = JSON.stringify(labelsNow) !== JSON.stringify(podLabels);
    if (labelsChanged) podLabels = labelsNow;
    let snapshot: Snapshot;
    try {
      const families = (await breaker.fire()) as Family[];
      const selected = builder.build(families, started);
      metrics.seriesSelected.set(selected.series.length);
      if (selected.dropped > 0) metrics.seriesDropped.inc(selected.dropped);
      if (selected.dropped !== lastDropped) {
        if (selected.dropped > 0) logger.warn({ dropped: selected.dropped, maxSeries: cfg.maxSeries }, 'more series selected than --max-series; the excess is dropped');
        lastDropped = selected.dropped;
      }
      snapshot = { status: 'OK', error: '', scrapeTimeMs: started, series: selected.series, podLabels: labelsChanged ? podLabels : undefined };
    } catch (err) {
      const open = breaker.opened || (err as { code?: string }).code === 'EOPENBREAKER';
      const failure = err instanceof ScrapeError ? err : new ScrapeError(open ? 'breaker_open' : 'connect', (err as Error).message);
      metrics.scrapeErrors.inc({ reason: open && !(err instanceof ScrapeError) ? 'breaker_open' : failure.reason });
      if (err instanceof ScrapeError) logger.warn({ reason: failure.reason, err: failure.message }, 'scrape failed');
      snapshot = { status: open ? 'BREAKER_OPEN' : 'FAILED', error: failure.message, scrapeTimeMs: started, series: [], podLabels: labelsChanged ? podLabels : undefined };
    } finally {
      end();
    }
    replicas.publish(snapshot);
  };

  // Never two scrapes at once: the next one is scheduled when this one is done, on the interval grid.
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const loop = (): void => {
    if (stopped) return;
    const t0 = Date.now();
    running = scrape().catch((err: unknown) => logger.error({ err }, 'unexpected error in the scrape loop'));
    void running.then(() => {
      if (!stopped) timer = setTimeout(loop, Math.max(0, cfg.intervalMs - (Date.now() - t0)));
    });
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      void metrics.registry.metrics().then((body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body));
    } else if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok' : 'not ready: no values delivered to an aggregator yet');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`--metrics-port ${cfg.metricsPort}: ${err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message}`)));
    server.listen(cfg.metricsPort, () => resolve((server.address() as { port: number }).port));
  });
  await replicas.start();
  loop();
  logger.info({ target: String(cfg.target), aggregator: cfg.aggregator, intervalMs: cfg.intervalMs, metrics: cfg.metrics, pod: `${cfg.pod.namespace}/${cfg.pod.name}`, metricsPort: port }, 'sidecar started');
  process.stdout.write(`${JSON.stringify({ msg: 'ports', metrics: port })}\n`);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      stopped = true;
      clearTimeout(timer);
      // Goodbye first: the pod's series leave every replica at once; all within the 2s the design allows.
      await replicas.goodbye(1000);
      breaker.shutdown();
      server.close();
      server.closeAllConnections();
    })());
  stopOnSignal(stop, logger, 2000);
  return stop;
}

function readLabels(file: string | undefined): Record<string, string> {
  if (!file) return {};
  try {
    return parseLabelsFile(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}
