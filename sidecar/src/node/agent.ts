import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { Gauge, Registry } from 'prom-client';
import { createLogger } from '../../../common/src/logger.js';
import { NODE_AGENT } from '../../../common/src/proto.js';
import { stopOnSignal } from '../../../common/src/lifecycle.js';
import { startOpsServer } from '../ops-server.js';
import { createPipeline, type Pipeline } from '../pipeline.js';
import { LargeBodyBudget, type ScrapeError } from '../scrape/scrape.js';
import { createScrapeMetrics } from '../self-metrics.js';
import type { Lookup } from '../stream/aggregator-streams.js';
import { createGrpcDial } from '../stream/dial.js';
import { loadNodeAgentConfig } from './config.js';
import { filePodSource, kubePodSource } from './pod-sources.js';
import { podTargets, type PodObject, type PodTarget } from './pod-targets.js';

/** Time for a pod's Goodbyes when it leaves. */
const GOODBYE_MS = 1000;
/** Largest bodies read at once, across the node's pods, in units of --max-body-bytes (40 MiB by default). */
const LARGE_BODIES_AT_ONCE = 4;
/** Every pod's replica set resolves the aggregator name; one answer serves them all for this long. */
const LOOKUP_CACHE_MS = 5000;

interface Scraped {
  target: PodTarget;
  pipeline: Pipeline;
}

/**
 * `metrics-relay node-agent`: one process per node running the sidecar's scrape → parse → select → rate → stream
 * path for every opted-in pod on the node, each pod with its own breaker, caps and streams (one HTTP/2 stream per
 * pod over one connection per replica). Pods come from a pod informer on spec.nodeName (or --pods-file); a pod
 * that leaves gets a Goodbye, so its values leave every replica at once. Prints `{"msg":"ports","metrics":<port>}`
 * once listening; on SIGTERM closes its streams (no Goodbye: the pods live on) and exits 0.
 */
export async function runNodeAgent(argv: string[], env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const cfg = loadNodeAgentConfig(argv, env);
  const logger = createLogger('metrics-relay-node-agent', cfg.logLevel);
  const registry = new Registry();
  const registers = [registry];
  const metrics = createScrapeMetrics(registry, 'metrics_relay_node_agent_');
  const running = new Map<string, Scraped>();
  const selected = new Map<string, number>();
  const breakerOpen = new Set<string>();
  const refused = new Map<string, string>();
  new Gauge({
    name: 'metrics_relay_node_agent_pods',
    help: 'Opted-in pods on the node: scraping, breaker_open (scraped, but failing: reported stale), refused (their annotations cannot be scraped; logged with the reason).',
    labelNames: ['state'],
    registers,
    collect() {
      this.set({ state: 'scraping' }, running.size - breakerOpen.size);
      this.set({ state: 'breaker_open' }, breakerOpen.size);
      this.set({ state: 'refused' }, refused.size);
    },
  });
  new Gauge({
    name: 'metrics_relay_node_agent_series_selected',
    help: "Series sent from each pod's last good scrape, summed over the pods.",
    registers,
    collect() {
      let n = 0;
      for (const v of selected.values()) n += v;
      this.set(n);
    },
  });
  const streamsUp = new Gauge({ name: 'metrics_relay_node_agent_streams_up', help: 'Pod streams up to each aggregator replica.', labelNames: ['replica'], registers });

  const readText = (path: string) => readFileSync(path, 'utf8');
  const dial = createGrpcDial({ insecure: cfg.insecure, caPem: cfg.caPem, caFile: cfg.caFile, tokenFile: cfg.tokenFile, readFile: readText, logger: logger.child({ component: 'stream' }), shareConnections: true });
  const resolve = cachedLookup((host) => lookup(host, { all: true }), LOOKUP_CACHE_MS);
  // NOTE: one pod's page may cost it its values, never the agent's memory: large pages share one budget.
  const bodies = new LargeBodyBudget(LARGE_BODIES_AT_ONCE * cfg.maxBodyBytes);
  let delivered = false;

  const startPod = (t: PodTarget): void => {
    const { uid } = t.pod;
    const log = logger.child({ namespace: t.pod.namespace, pod: t.pod.name });
    const scraped: Scraped = { target: t, pipeline: undefined as never };
    /** The replicas this pod's stream is up to. */
    const upTo = new Set<string>();
    scraped.pipeline = createPipeline({
      options: t.options!,
      pod: t.pod,
      agent: NODE_AGENT,
      // NOTE: read through the entry, so a label change needs no new stream.
      labels: () => scraped.target.labels,
      dial,
      lookup: resolve,
      bodies,
      metrics: { ...metrics, seriesSelected: { set: (n) => selected.set(uid, n) } },
      logger: log,
      describeFailure: unreachable,
      onBreakerState: (state) => (state === 'open' ? breakerOpen.add(uid) : breakerOpen.delete(uid)),
      onStreamState: (replica, up) => {
        if (up === upTo.has(replica)) return;
        if (up) upTo.add(replica);
        else upTo.delete(replica);
        streamsUp.inc({ replica }, up ? 1 : -1);
      },
      onDelivered: (replica) => {
        if (delivered) return;
        delivered = true;
        logger.info({ replica }, 'ready: a scrape was delivered to an aggregator replica');
      },
    });
    running.set(uid, scraped);
    scraped.pipeline.start().catch((err: unknown) => log.error({ err }, 'cannot start the scrape of the pod'));
    log.info({ target: String(t.options!.target), intervalMs: t.options!.intervalMs }, 'pod on the node: scraping it');
  };

  const stopPod = (uid: string, why: string): void => {
    const scraped = running.get(uid)!;
    running.delete(uid);
    selected.delete(uid);
    breakerOpen.delete(uid);
    scraped.pipeline.stop(GOODBYE_MS).catch(() => undefined);
    logger.info({ namespace: scraped.target.pod.namespace, pod: scraped.target.pod.name, why }, 'pod no longer scraped: Goodbye sent, its values leave every replica');
  };

  const reconcile = (pods: readonly PodObject[]): void => {
    const wanted = podTargets(pods, cfg.nodeName, cfg.defaults, cfg.podArgs);
    for (const [uid, scraped] of running) {
      const w = wanted.get(uid);
      if (!w) stopPod(uid, 'gone from the node (deleted, not running, or no longer opted in)');
      else if (w.fingerprint !== scraped.target.fingerprint) stopPod(uid, 'its annotations changed');
      else scraped.target = w;
    }
    for (const uid of refused.keys()) if (!wanted.get(uid)?.problem) refused.delete(uid);
    for (const [uid, t] of wanted) {
      if (running.has(uid)) continue;
      if (t.problem === undefined) {
        startPod(t);
      } else if (refused.get(uid) !== t.problem) {
        refused.set(uid, t.problem);
        logger.warn({ namespace: t.pod.namespace, pod: t.pod.name, err: t.problem }, 'pod opted in but cannot be scraped');
      }
    }
  };

  /** A failed scrape's message, saying the agent could not reach the pod when that is what happened. */
  function unreachable(err: ScrapeError): string {
    if (err.reason !== 'connect' && err.reason !== 'timeout') return err.message;
    const m = /^GET (\S+): (.*)$/s.exec(err.message);
    return m ? `node agent cannot reach ${new URL(m[1]!).host}: ${m[2]}` : `node agent cannot reach the pod: ${err.message}`;
  }

  const source = cfg.podsFile ? filePodSource(cfg.podsFile, logger) : await kubePodSource(cfg.kubeconfig, cfg.nodeName, logger);
  const ops = await startOpsServer({
    port: cfg.metricsPort,
    host: cfg.bindAddress,
    registry,
    notReady: () => source.notReady(),
    notLive: () => {
      const late = [...running.values()].map((s) => s.pipeline.notLive());
      // NOTE: one slow pod never restarts the agent; every pod late means the agent itself is stuck.
      return late.length > 0 && late.every((l) => l !== undefined) ? `no pod's scrape started on time: ${late[0]}` : undefined;
    },
  });
  await source.start(reconcile);
  logger.info({ node: cfg.nodeName, defaults: cfg.defaults, pods: cfg.podsFile ?? 'Kubernetes API', metricsPort: ops.port }, 'node agent started');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await source.stop();
      // NOTE: no Goodbye: the pods live on while the agent restarts (a rolling update); their values age within the
      // staleness window until the next agent reports them again.
      await Promise.all([...running.values()].map((s) => s.pipeline.stop()));
      await ops.close();
    })());
  stopOnSignal(stop, logger, 5000);
  process.stdout.write(`${JSON.stringify({ msg: 'ports', metrics: ops.port })}\n`);
  return stop;
}

/** A lookup whose answers are reused for `ttlMs` (concurrent callers share one query). */
function cachedLookup(lookupFn: Lookup, ttlMs: number): Lookup {
  const cache = new Map<string, { at: number; answer: ReturnType<Lookup> }>();
  return (host) => {
    const hit = cache.get(host);
    if (hit && Date.now() - hit.at < ttlMs) return hit.answer;
    const answer = lookupFn(host);
    cache.set(host, { at: Date.now(), answer });
    answer.catch(() => cache.delete(host));
    return answer;
  };
}
