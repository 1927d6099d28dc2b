import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface LeaderOptions {
  namespace: string;
  name: string;
  /** How long a holder that stopped renewing keeps the lease. */
  leaseDurationMs: number;
  /** How often the holder renews and the others try. */
  retryMs: number;
  logger: Logger;
  /** Identity written into the lease (default: host name plus a random suffix). */
  identity?: string;
}

export interface Leader {
  readonly identity: string;
  isLeader(): boolean;
  stop(): Promise<void>;
}

const statusOf = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder renews
 * `renewTime` every retry period; another replica takes the lease over only when it has seen the same record,
 * unchanged, for a whole lease duration (measured on its own clock, so clock skew between replicas does not
 * matter). Writes are optimistic (resourceVersion), so two candidates never both win.
 * The lease is read and updated by name; it is created only when missing (the chart renders it).
 */
export function electLeader(kc: KubeConfig, opts: LeaderOptions): Leader {
  const api = kc.makeApiClient(CoordinationV1Api);
  const identity = opts.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
  const { namespace, name } = opts;
  let leader = false;
  let lastRenewed = 0;
  let observed: { record: string; at: number } | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const spec = (lease: V1Lease | undefined, now: number) => {
    const previous = lease?.spec?.holderIdentity;
    return {
      ...lease?.spec,
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(opts.leaseDurationMs / 1000),
      renewTime: new V1MicroTime(now),
      ...(previous !== identity ? { acquireTime: new V1MicroTime(now), leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (previous ? 1 : 0) } : {}),
    };
  };

  const setLeader = (value: boolean, why: string) => {
    if (value === leader) return;
    leader = value;
    opts.logger.info({ lease: `${namespace}/${name}`, identity, reason: why }, value ? 'became the leader' : 'no longer the leader');
  };

  const attempt = async (): Promise<void> => {
    const now = Date.now();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: spec(undefined, now) } });
      lastRenewed = now;
      return setLeader(true, 'created the lease');
    }
    const s = lease.spec ?? {};
    // NOTE: client-node 2 hands MicroTime fields back as the server's string, not as a Date.
    const record = `${s.holderIdentity ?? ''}|${String(s.renewTime ?? '')}`;
    if (observed?.record !== record) observed = { record, at: now };
    const holder = s.holderIdentity;
    const expired = !holder || now - observed.at >= opts.leaseDurationMs;
    if (holder !== identity && !expired) return setLeader(false, `held by ${holder}`);
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: spec(lease, now) } });
    lastRenewed = now;
    setLeader(true, holder === identity ? 'renewed' : holder ? `took over from ${holder} (not renewed for ${opts.leaseDurationMs}ms)` : 'the lease was free');
  };

  const loop = async (): Promise<void> => {
    if (stopped) return;
    try {
      await attempt();
    } catch (err) {
      // A conflict means another replica wrote first; anything else, keep leading only while the lease lasts.
      const code = statusOf(err);
      if (code !== 409) opts.logger.warn({ lease: `${namespace}/${name}`, code, err: String(err) }, 'lease update failed');
      if (code === 409 || Date.now() - lastRenewed >= opts.leaseDurationMs) setLeader(false, code === 409 ? 'another replica wrote the lease first' : 'could not renew the lease in time');
    }
    if (!stopped) timer = setTimeout(() => void loop(), opts.retryMs);
  };
  void loop();

  return {
    identity,
    // NOTE: a leader that could not renew for a lease duration may already have been replaced: not leader then.
    isLeader: () => leader && Date.now() - lastRenewed < opts.leaseDurationMs,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (!leader) return;
      leader = false;
      // Give the lease up so a successor need not wait a lease duration.
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        if (lease.spec?.holderIdentity === identity) await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, renewTime: undefined } } });
      } catch (err) {
        opts.logger.warn({ err: String(err) }, 'could not release the lease');
      }
    },
  };
}
