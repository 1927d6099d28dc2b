import { readFile } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { PodObject } from './pod-targets.js';

/** Where the agent learns the pods of its node. `onChange` gets every pod known, after each change. */
export interface PodSource {
  start(onChange: (pods: readonly PodObject[]) => void): Promise<void>;
  /** Undefined once the pods were listed, else why not yet (for /readyz). */
  notReady(): string | undefined;
  stop(): Promise<void>;
}

/** Coalesces bursts of watch events (a rollout) into one reconcile. */
const SETTLE_MS = 100;

/**
 * A pod informer restricted to the node (fieldSelector spec.nodeName), via @kubernetes/client-node: one LIST,
 * then a WATCH that the informer re-establishes (re-listing) after any failure. Loaded only when used.
 */
export async function kubePodSource(kubeconfig: string | undefined, nodeName: string, logger: Logger): Promise<PodSource> {
  const { CoreV1Api, KubeConfig, ListWatch, Watch } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const informer = new ListWatch<V1Pod>('/api/v1/pods', new Watch(kc), () => core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
  let listed = false;
  let timer: NodeJS.Timeout | undefined;
  return {
    async start(onChange) {
      const changed = (): void => {
        timer ??= setTimeout(() => {
          timer = undefined;
          onChange(informer.list());
        }, SETTLE_MS);
      };
      for (const event of ['add', 'update', 'delete'] as const) informer.on(event, changed);
      informer.on('connect', () => {
        if (!listed) logger.info({ node: nodeName }, 'pods of the node listed');
        listed = true;
        changed();
      });
      informer.on('error', (err) => logger.warn({ err: String(err) }, 'pod watch failed; keeping the pods known while it reconnects'));
      // NOTE: not awaited: an API that is down must not keep the agent from serving its probes.
      informer.start().catch((err: unknown) => logger.warn({ err: String(err) }, 'first pod list failed; retrying'));
    },
    notReady: () => (listed ? undefined : `the pods of node ${nodeName} have not been listed from the Kubernetes API yet`),
    async stop() {
      clearTimeout(timer);
      await informer.stop();
    },
  };
}

/** A v1 PodList JSON file, read again every `everyMs`; while it is unreadable the last good list stands. */
export function filePodSource(file: string, logger: Logger, everyMs = 1000): PodSource {
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  let read = false;
  let failing = false;
  return {
    async start(onChange) {
      const poll = async (): Promise<void> => {
        try {
          const text = await readFile(file, 'utf8');
          if (text !== last) {
            const list = JSON.parse(text) as { items?: PodObject[] };
            if (!Array.isArray(list.items)) throw new Error('not a PodList: no "items" array');
            last = text;
            onChange(list.items);
          }
          read = true;
          failing = false;
        } catch (err) {
          if (!failing) logger.warn({ file, err: (err as Error).message }, 'cannot read the pods file; keeping the pods read before');
          failing = true;
        }
      };
      await poll();
      timer = setInterval(() => void poll(), everyMs);
    },
    notReady: () => (read ? undefined : `the pods file has not been read yet`),
    async stop() {
      clearInterval(timer);
    },
  };
}
