import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface Followed {
  stop(): void;
}

/**
 * Follows one object by name: a read, then a watch of its collection restricted to that name (so RBAC
 * `resourceNames` can allow it), re-established whenever it ends. `onChange` gets the object at start and on
 * every change. `hint` turns a 403 into advice. Errors are logged and retried every 5s.
 */
export function followObject<T extends KubernetesObject>(
  kc: KubeConfig,
  target: { collectionPath: string; name: string; read: () => Promise<T>; what: string; hint?: string },
  logger: Logger,
  onChange: (obj: T) => void,
): Followed {
  const watch = new Watch(kc);
  let stopped = false;
  let abort: AbortController | undefined;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      let delayMs = 1000;
      try {
        const obj = await target.read();
        onChange(obj);
        await new Promise<void>((resolve) => {
          void watch
            .watch(target.collectionPath, { fieldSelector: `metadata.name=${target.name}`, resourceVersion: obj.metadata?.resourceVersion }, (type, changed: T) => {
              if (type === 'ADDED' || type === 'MODIFIED') onChange(changed);
            }, () => resolve())
            .then((c) => (abort = c), () => resolve());
        });
      } catch (err) {
        delayMs = 5000;
        const code = (err as { code?: number }).code;
        logger.warn({ err: String(err) }, code === 403 && target.hint ? `cannot read ${target.what}; ${target.hint}` : `reading ${target.what} failed; retrying`);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, delayMs));
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
      abort?.abort();
    },
  };
}
