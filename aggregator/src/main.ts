import { createServer as createHttpServer, type Server } from 'node:http';
import { ListenError } from '../../common/src/errors.js';
import { createServer as createHttpsServer } from 'node:https';
import { watchFile, unwatchFile } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import express, { type Express } from 'express';
import { createLogger, type Logger } from '../../common/src/logger.js';
import { stopOnSignal } from '../../common/src/lifecycle.js';
import { servingKeyPair } from '../../common/src/tls.js';
import { loadAggregatorConfig, type AggregatorConfig } from './config.js';
import { MemoryStore } from './store/memory-store.js';
import { defaultStoreBudget } from './store/memory-budget.js';
import { Freshness } from './store/freshness.js';
import { loadRules, noRules, type Rules } from './rules.js';
import { createAggregatorMetrics, type AggregatorMetrics } from './self-metrics.js';
import { StoreMetricsProvider } from './api/store-provider.js';
import { standaloneSelectors, type ObjectSelectors } from './kube/object-selectors.js';
import { Discovery } from './api/discovery.js';
import { createApiRoutes } from './api/routes.js';
import { statusBody } from './api/status.js';
import { ApiError } from './errors.js';
import { parseSelector } from './selector.js';
import { createIngestServer } from './ingest/server.js';
import { WarmUp } from './readiness.js';
import type { KubeObjects } from './kube/objects.js';
import { Authenticator, type AuthnSettings } from './auth/authn.js';
import { Authorizer } from './auth/authz.js';
import { authMiddleware } from './auth/middleware.js';
import { memoryAdmission } from './ingest/admission.js';
import { containerMemoryLimit } from './store/memory-budget.js';
import { tokenStreamAuthenticator } from './ingest/token-auth.js';
import { INGEST_AUDIENCE } from '../../common/src/proto.js';
import { readFileSync } from 'node:fs';
import { renderStatusPage } from './status-page.js';
import { createMutateHandler } from './webhook/handler.js';
import { ServingIdentity } from './serving-identity.js';

/** `metrics-relay aggregator`: the composition root. Returns a stop function (also wired to SIGTERM). */
export async function runAggregator(argv: string[], env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const cfg = loadAggregatorConfig(argv, env);
  const logger = createLogger('metrics-relay-aggregator', cfg.logLevel);
  const startMs = Date.now();
  const budget = cfg.maxStoreBytes !== undefined ? { bytes: cfg.maxStoreBytes, source: '--max-store-bytes' } : defaultStoreBudget();
  logger.info({ maxStoreBytes: budget.bytes, source: budget.source }, 'memory budget of the store');
  let rules: Rules = cfg.configFile ? loadRules(cfg.configFile) : noRules;
  if (cfg.configFile) watchRules(cfg.configFile, logger, (r) => (rules = r));
  const freshness = new Freshness(() => rules, cfg.staleAfterMs);
  const store = new MemoryStore({ maxSeriesPerPod: cfg.maxSeriesPerPod, maxSeriesTotal: cfg.maxSeries, maxBytes: budget.bytes }, freshness);
  const metrics = createAggregatorMetrics(store, true, cfg.clusterName);
  const warmUp = new WarmUp(startMs, cfg.warmupMs);

  let objects: ObjectSelectors;
  let kube: KubeObjects | undefined;
  // NOTE: the Kubernetes client is imported only when used: loading it costs about a second of startup, which
  // --standalone (the demo, tests) never needs.
  const cluster = cfg.standalone ? undefined : { ...(await import('./kube/objects.js')), ...(await import('./kube/reviews.js')) };
  const kc = cluster?.loadKubeConfig(cfg.kubeconfig);
  if (!cluster || !kc) {
    objects = standaloneSelectors(store, parseSelector);
    const loopback = cfg.bindAddress === '127.0.0.1' || cfg.bindAddress === '::1';
    logger.warn({ bindAddress: cfg.bindAddress, authentication: Boolean(cfg.requestHeader || cfg.clientCaFile) }, loopback
      ? 'standalone mode: no Kubernetes API; listening on loopback only'
      : `standalone mode: no Kubernetes API, and listening on ${cfg.bindAddress} as --bind-address asked: anyone who can reach it can report and read values`);
  } else {
    kube = cluster.createKubeObjects(kc, { logger: logger.child({ component: 'kube' }), metrics, onPodDeleted: (ns, name, uid) => store.deletePod(ns, name, uid) });
    objects = kube;
  }

  // Authentication: CA files from flags (re-read when they change) win over the cluster's ConfigMap.
  let authn: AuthnSettings = {};
  const stopWatching: (() => void)[] = [];
  const fromFiles = (): AuthnSettings => ({
    ...(cfg.requestHeader ? { requestHeader: { ...cfg.requestHeader, caPem: readFileSync(cfg.requestHeader.caFile, 'utf8') } } : {}),
    ...(cfg.clientCaFile ? { clientCaPem: readFileSync(cfg.clientCaFile, 'utf8') } : {}),
  });
  const authEnabled = Boolean(kc || cfg.requestHeader || cfg.clientCaFile);
  if (cfg.requestHeader || cfg.clientCaFile) {
    authn = fromFiles();
    for (const f of [cfg.requestHeader?.caFile, cfg.clientCaFile].filter((x): x is string => Boolean(x))) {
      watchFile(f, { interval: 2000 }, () => {
        try {
          authn = fromFiles();
          logger.info({ file: f }, 'client CA reloaded');
        } catch (err) {
          logger.error({ file: f, err: (err as Error).message }, 'cannot reload client CA; keeping the previous one');
        }
      });
      stopWatching.push(() => unwatchFile(f));
    }
  } else if (cluster && kc) {
    const w = cluster.watchAuthConfigMap(kc, logger.child({ component: 'authn' }), (s) => (authn = s));
    stopWatching.push(() => w.stop());
  }
  const authenticator = authEnabled ? new Authenticator(() => authn, cluster && kc ? cluster.tokenReviewer(kc, metrics) : undefined) : undefined;
  const authorizer = cluster && kc ? new Authorizer(cluster.accessReviewer(kc, metrics), { allowTtlMs: 10_000, denyTtlMs: 10_000, maxEntries: 10_000 }) : undefined;
  const nodeAgents = kube && cfg.nodeAgentServiceAccount ? { serviceAccount: cfg.nodeAgentServiceAccount, placement: kube.placement } : undefined;
  const ingestAuth = cluster && kc ? tokenStreamAuthenticator(cluster.tokenReviewer(kc, metrics, [INGEST_AUDIENCE]), { ttlMs: 60_000, maxEntries: 10_000, ...(nodeAgents ? { nodeAgents } : {}) }) : undefined;
  const provider = new StoreMetricsProvider(store, objects, Date.now, cfg.maxResponseBytes);
  const discovery = new Discovery(provider);

  const identity = new ServingIdentity(await servingKeyPair(cfg.tlsCertFile, cfg.tlsKeyFile, ['localhost', '127.0.0.1', 'metrics-relay']));
  // Managed TLS: the certificate comes from a Secret the replicas share (kube/certificates.ts); until it is there
  // a self-signed one answers and /readyz says why it is not ready.
  const managedTls = cfg.managedTls && kc
    ? (await import('./kube/certificates.js')).startManagedTls(kc, cfg.managedTls, logger.child({ component: 'tls' }), (pair) => {
        if (identity.set(pair)) logger.info({ secret: `${cfg.managedTls!.namespace}/${cfg.managedTls!.secret}` }, 'serving certificate loaded from the Secret');
      })
    : undefined;
  const notReady = (): string | undefined =>
    warmUp.notReadyReason(Date.now()) ??
    kube?.notReadyReason() ??
    (managedTls && managedTls.bundle() === undefined ? `no serving certificate in Secret ${cfg.managedTls!.namespace}/${cfg.managedTls!.secret} yet` : undefined);

  const api = express();
  api.disable('x-powered-by');
  // NOTE: no ETags: hashing every large list response costs more than it could ever save.
  api.set('etag', false);
  mountProbes(api, notReady);
  // NOTE: before authentication: the kube-apiserver calls webhooks without a client certificate.
  const beforeInject = managedTls ? (namespace: string) => managedTls.ensureCaConfigMap(namespace) : undefined;
  api.post(['/mutate', '/mutate/:scope'], createMutateHandler(cfg.injection, logger, { reviews: metrics.webhookReviews }, beforeInject));
  if (authenticator) api.use(authMiddleware(authenticator, authorizer, logger.child({ component: 'auth' })));
  api.use(createApiRoutes({ provider, discovery, metrics, logger: logger.child({ component: 'api' }) }));
  api.use((req, res) => {
    const err = new ApiError(404, 'NotFound', `the server could not find the requested resource: ${req.method} ${req.path}`);
    res.status(404).type('application/json').send(JSON.stringify(statusBody(err)));
  });
  // NOTE: request a client certificate but do not reject without one: only the front proxy presents one, and
  // the authenticator decides what a certificate is worth.
  const apiServer = createHttpsServer({ ...identity.pair, requestCert: true, rejectUnauthorized: false, noDelay: true }, api);
  // A new certificate serves new connections; open ones are not dropped.
  identity.onChange((pair) => apiServer.setSecureContext({ ...pair }));
  if (cfg.tlsCertFile && cfg.tlsKeyFile) {
    const [certFile, keyFile] = [cfg.tlsCertFile, cfg.tlsKeyFile];
    // cert-manager rotation: the files change in place.
    const reload = () => {
      try {
        if (identity.set({ cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') })) logger.info({ certFile }, 'serving certificate reloaded');
      } catch (err) {
        logger.error({ certFile, err: (err as Error).message }, 'cannot reload the serving certificate; keeping the previous one');
      }
    };
    for (const f of [certFile, keyFile]) {
      watchFile(f, { interval: 2000 }, reload);
      stopWatching.push(() => unwatchFile(f));
    }
  }

  const ops = express();
  ops.disable('x-powered-by');
  mountProbes(ops, notReady);
  ops.get('/', async (_req, res) => {
    res.type('text/html').send(await renderStatusPage(store, metrics, notReady(), Date.now(), cfg.clusterName));
  });
  ops.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const opsServer = createHttpServer(ops);

  const ingest = createIngestServer({ store, metrics, logger: logger.child({ component: 'ingest' }), warmUp, admitStream: memoryAdmission(containerMemoryLimit()?.bytes), maxMessageBytes: cfg.maxMessageBytes, limits: { maxStreamsPerPod: cfg.maxStreamsPerPod, maxReportsPerSecond: cfg.maxReportsPerSecond }, labelLimits: { maxNameBytes: cfg.maxLabelNameBytes, maxValueBytes: cfg.maxLabelValueBytes, maxLabels: cfg.maxLabelsPerSeries }, maxClockSkewMs: cfg.maxClockSkewMs, ...(ingestAuth ? { authenticate: ingestAuth } : {}), ...(nodeAgents ? { podPlacement: nodeAgents.placement } : {}) });
  const ingestCreds = cfg.standalone && !cfg.tlsCertFile
    ? grpc.ServerCredentials.createInsecure()
    // NOTE: grpc-js 1.14 hands this function's first argument to the credentials as the identity provider (its
    // parameter names are swapped), so the serving identity goes first. A new certificate serves new streams.
    : grpc.experimental.createCertificateProviderServerCredentials(identity, null, false);

  const ports = {
    api: await listen(apiServer, cfg.apiPort, cfg.bindAddress, '--api-port'),
    metrics: await listen(opsServer, cfg.metricsPort, cfg.bindAddress, '--metrics-port'),
    ingest: await ingest.start(cfg.bindAddress, cfg.ingestPort, ingestCreds).catch((err: Error) => {
      throw new ListenError(`--ingest-port ${cfg.ingestPort}: cannot listen on ${cfg.bindAddress}: ${err.message}`);
    }),
  };
  await kube?.start();
  const sweep = setInterval(() => {
    const n = store.expire(Date.now(), cfg.expireAfterMs);
    if (n > 0) logger.info({ pods: n }, 'expired pods that stopped reporting');
  }, Math.min(30_000, cfg.expireAfterMs / 4));
  sweep.unref();
  logger.info({ ...ports, cluster: cfg.clusterName, bindAddress: cfg.bindAddress, standalone: cfg.standalone, ingestTls: !(cfg.standalone && !cfg.tlsCertFile), authentication: authEnabled }, 'aggregator listening');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Stop accepting everywhere, let in-flight HTTP requests finish, then end the ingest streams.
      clearInterval(sweep);
      if (cfg.configFile) unwatchFile(cfg.configFile);
      for (const f of stopWatching) f();
      await Promise.all([closeServer(apiServer), closeServer(opsServer), ingest.stop(1000), kube?.stop(), managedTls?.stop()]);
    })());
  stopOnSignal(stop, logger);
  // Tests and the demo read the bound ports from this line on stdout. NOTE: after stopOnSignal: a reader may send
  // SIGTERM at once, and until a handler is installed the signal's default action kills the process.
  process.stdout.write(`${JSON.stringify({ msg: 'ports', ...ports })}\n`);
  return stop;
}

function mountProbes(app: Express, notReady: () => string | undefined): void {
  const ok = (_req: express.Request, res: express.Response) => void res.type('text/plain').send('ok');
  app.get('/healthz', ok);
  app.get('/livez', ok);
  app.get('/readyz', (_req, res) => {
    const why = notReady();
    if (why === undefined) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send(`[-]ready failed: ${why}\nreadyz check failed\n`);
  });
}

function listen(server: Server, port: number, host: string, flag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`${flag} ${port}: cannot listen on ${host}: ${err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message}`)));
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function watchRules(file: string, logger: Logger, apply: (r: Rules) => void): void {
  watchFile(file, { interval: 2000 }, () => {
    try {
      apply(loadRules(file));
      logger.info({ file }, 'rules reloaded');
    } catch (err) {
      logger.error({ file, err: (err as Error).message }, 'rules file invalid; keeping the previous rules');
    }
  });
}

export type { AggregatorConfig, AggregatorMetrics };
