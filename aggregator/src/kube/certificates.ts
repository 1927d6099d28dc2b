import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { AdmissionregistrationV1Api, ApiregistrationV1Api, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { bundleOf, rotate, type Authority, type RotationSettings, type TlsState } from '../certs/rotation.js';
import type { KeyPair } from '../../../common/src/tls.js';
import { electLeader, type Leader } from './leader.js';
import { followObject, type Followed } from './follow.js';

/** --managed-tls-* flags. */
export interface ManagedTlsConfig {
  namespace: string;
  secret: string;
  lease: string;
  hosts: string[];
  apiServices: string[];
  webhooks: string[];
  /** Per-namespace ConfigMap (key ca.crt) kept equal to the CA bundle for injected sidecars. */
  caConfigMap: string | undefined;
  caValidityMs: number;
  certValidityMs: number;
  overlapMs: number;
}

export interface ManagedTls {
  /** The CA bundle (PEM) last seen in the Secret; undefined before. */
  bundle(): string | undefined;
  /** Creates the CA ConfigMap in a namespace when missing (the webhook calls it before injecting there). */
  ensureCaConfigMap(namespace: string): Promise<void>;
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Secret keys: the trusted CAs (newest first) and their keys in the same order; the serving pair. */
export const SECRET_KEYS = { bundle: 'ca.crt', caKeys: 'ca-keys.pem', cert: 'tls.crt', key: 'tls.key' } as const;
const LEASE_DURATION_MS = 15_000;
const LEASE_RETRY_MS = 2_000;

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const pemBlocks = (text: string) => text.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----\n?/g) ?? [];
const statusOf = (err: unknown): number | undefined => (err as { code?: number }).code;

/** Reads the state from the Secret's data; anything inconsistent (a key not matching its CA) reads as empty. */
export function stateFromSecret(data: Record<string, string> | undefined): TlsState {
  const certs = pemBlocks(unb64(data?.[SECRET_KEYS.bundle]));
  const keys = pemBlocks(unb64(data?.[SECRET_KEYS.caKeys]));
  const authorities: Authority[] = certs.map((cert, i) => ({ cert, key: keys[i] ?? '' }));
  const matches = (cert: string, key: string) => {
    try {
      const pub = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' }).toString('base64');
      return pub(new X509Certificate(cert).publicKey) === pub(createPublicKey(createPrivateKey(key)));
    } catch {
      return false;
    }
  };
  if (certs.length !== keys.length || !authorities.every((a) => matches(a.cert, a.key))) return { authorities: [], serving: undefined };
  const cert = unb64(data?.[SECRET_KEYS.cert]);
  const key = unb64(data?.[SECRET_KEYS.key]);
  return { authorities, serving: cert && key && matches(cert, key) ? { cert, key } : undefined };
}

function secretData(state: TlsState): Record<string, string> {
  return {
    [SECRET_KEYS.bundle]: b64(bundleOf(state)),
    [SECRET_KEYS.caKeys]: b64(state.authorities.map((a) => a.key.trim()).join('\n') + '\n'),
    [SECRET_KEYS.cert]: b64(state.serving!.cert),
    [SECRET_KEYS.key]: b64(state.serving!.key),
  };
}

/**
 * Managed TLS: the aggregator runs its own CA. Every replica follows the Secret and serves the certificate in it
 * (`onServing`). The leader (a Lease) moves the CA and certificate along their schedule (certs/rotation.ts),
 * writes the Secret, and publishes the CA bundle: the caBundle of our APIServices and webhook configurations, and
 * the per-namespace CA ConfigMaps that injected sidecars read. A new CA starts signing only once its bundle was
 * published everywhere.
 */
export function startManagedTls(kc: KubeConfig, cfg: ManagedTlsConfig, logger: Logger, onServing: (pair: KeyPair) => void): ManagedTls {
  const core = kc.makeApiClient(CoreV1Api);
  const registration = kc.makeApiClient(ApiregistrationV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const settings: RotationSettings = { caValidityMs: cfg.caValidityMs, certValidityMs: cfg.certValidityMs, overlapMs: cfg.overlapMs, hosts: cfg.hosts, caName: `${cfg.secret}-ca` };
  const where = `Secret ${cfg.namespace}/${cfg.secret}`;
  let bundle: string | undefined;

  const follow: Followed = followObject<V1Secret>(kc, {
    collectionPath: `/api/v1/namespaces/${cfg.namespace}/secrets`,
    name: cfg.secret,
    read: () => core.readNamespacedSecret({ name: cfg.secret, namespace: cfg.namespace }),
    what: where,
    hint: 'the aggregator needs get, list, watch and update on that Secret by name (the chart grants them)',
  }, logger, (secret) => {
    const state = stateFromSecret(secret.data);
    if (!state.serving) return;
    bundle = bundleOf(state);
    onServing({ cert: state.serving.cert, key: state.serving.key });
  });

  const leader: Leader = electLeader(kc, { namespace: cfg.namespace, name: cfg.lease, leaseDurationMs: LEASE_DURATION_MS, retryMs: LEASE_RETRY_MS, logger });
  let published: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // Often enough that the overlap is honoured to within a fifth of it; never busier than once a second.
  const tickMs = Math.max(1000, Math.min(30_000, cfg.overlapMs / 5));

  /** One leader round: rotate what is due, write the Secret, publish the bundle. */
  const reconcile = async (): Promise<void> => {
    const secret = await core.readNamespacedSecret({ name: cfg.secret, namespace: cfg.namespace });
    const before = stateFromSecret(secret.data);
    const { state, changes } = await rotate(before, Date.now(), settings, published === bundleOf(before) || before.authorities.length === 0);
    if (changes.length > 0) {
      await core.replaceNamespacedSecret({ name: cfg.secret, namespace: cfg.namespace, body: { ...secret, data: { ...secret.data, ...secretData(state) } } });
      logger.info({ secret: where, changes }, 'certificates rotated');
      bundle = bundleOf(state);
      onServing({ cert: state.serving!.cert, key: state.serving!.key });
    }
    const pem = bundleOf(state);
    const failures = await publish(pem);
    published = failures.length === 0 ? pem : undefined;
    if (failures.length > 0) logger.warn({ failures }, 'could not publish the CA bundle everywhere; a new CA will not sign until it is');
  };

  /** Writes the bundle wherever it differs; returns what failed. */
  const publish = async (pem: string): Promise<string[]> => {
    const failures: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${statusOf(err) ?? ''} ${String(err).slice(0, 200)}`);
      }
    };
    const caBundle = b64(pem);
    for (const name of cfg.apiServices) {
      await attempt(`APIService ${name}`, async () => {
        const svc = await registration.readAPIService({ name });
        if (svc.spec?.caBundle === caBundle) return;
        await registration.replaceAPIService({ name, body: { ...svc, spec: { ...svc.spec!, caBundle } } });
        logger.info({ apiService: name }, 'caBundle updated');
      });
    }
    for (const name of cfg.webhooks) {
      await attempt(`MutatingWebhookConfiguration ${name}`, async () => {
        const hook = await admission.readMutatingWebhookConfiguration({ name });
        if ((hook.webhooks ?? []).every((w) => w.clientConfig.caBundle === caBundle)) return;
        const webhooks = (hook.webhooks ?? []).map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } }));
        await admission.replaceMutatingWebhookConfiguration({ name, body: { ...hook, webhooks } });
        logger.info({ webhookConfiguration: name }, 'caBundle updated');
      });
    }
    if (cfg.caConfigMap) {
      const cmName = cfg.caConfigMap;
      await attempt(`ConfigMaps ${cmName}`, async () => {
        const list = await core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${cmName}` });
        for (const cm of list.items) {
          if (cm.data?.['ca.crt'] === pem) continue;
          await attempt(`ConfigMap ${cm.metadata?.namespace}/${cmName}`, () => core.replaceNamespacedConfigMap({ name: cmName, namespace: cm.metadata!.namespace!, body: { ...cm, data: { ...cm.data, 'ca.crt': pem } } }));
        }
      });
    }
    return failures;
  };

  const loop = async (): Promise<void> => {
    if (stopped) return;
    if (leader.isLeader()) {
      try {
        await reconcile();
      } catch (err) {
        logger.warn({ secret: where, code: statusOf(err), err: String(err).slice(0, 300) }, statusOf(err) === 409 ? 'the Secret changed under us; retrying' : 'certificate round failed; retrying');
      }
    } else {
      published = undefined;
    }
    if (!stopped) timer = setTimeout(() => void loop(), leader.isLeader() ? tickMs : LEASE_RETRY_MS);
  };
  void loop();

  return {
    bundle: () => bundle,
    async ensureCaConfigMap(namespace) {
      if (!cfg.caConfigMap || bundle === undefined) return;
      try {
        // Bounded: this runs inside an admission call (the webhook's timeout is a few seconds).
        await Promise.race([
          core.createNamespacedConfigMap({
            namespace,
            body: { metadata: { name: cfg.caConfigMap, namespace, labels: { 'app.kubernetes.io/managed-by': 'metrics-relay' } }, data: { 'ca.crt': bundle } },
          }),
          new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2s')), 2000).unref()),
        ]);
        logger.info({ namespace, configMap: cfg.caConfigMap }, 'CA ConfigMap created for injected sidecars');
      } catch (err) {
        // Already there: the leader keeps its content current.
        if (statusOf(err) !== 409) logger.warn({ namespace, configMap: cfg.caConfigMap, err: String(err).slice(0, 300) }, 'cannot create the CA ConfigMap; the sidecar mounts it optionally and will trust the CA once it exists');
      }
    },
    isLeader: () => leader.isLeader(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      follow.stop();
      await leader.stop();
    },
  };
}
