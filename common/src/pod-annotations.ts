// The `metrics-relay.io/*` pod annotations: one reading for both ways a pod is scraped. The injection webhook turns
// them into a sidecar's flags (target on 127.0.0.1); the node agent into a scrape of the pod's IP.
import { quoteValue, type Problem } from './errors.js';

/** Annotation and label prefix of the project. */
export const ANNOTATION_PREFIX = 'metrics-relay.io/';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a pod's annotations ask for (after defaults). target and appPort only when valid. */
export interface PodScrapeOptions {
  /** `<scheme>://<host>:<port><path>`. */
  target: string | undefined;
  appPort: number | undefined;
  /** Go duration, checked by the sidecar's options (--interval). */
  interval: string;
  /** Comma list, checked by the sidecar's options (--metrics). */
  metrics: string;
}

/** Reads one `metrics-relay.io/<key>` annotation of a pod's annotations (undefined when absent or not a string). */
export function annotationReader(annotations: unknown): (key: string) => string | undefined {
  const all = isObj(annotations) ? annotations : {};
  return (key) => {
    const v = all[ANNOTATION_PREFIX + key];
    return typeof v === 'string' ? v : undefined;
  };
}

/**
 * Reads port, path, scheme, interval and metrics. Checks here only what has no sidecar flag of its own (the app
 * port, the path and scheme the target URL is built from); the sidecar's option checks judge the rest. `host` is
 * where the app is reached (127.0.0.1 beside it, the pod IP from a node agent). Appends problems found.
 */
export function readPodScrapeOptions(
  annotation: (key: string) => string | undefined,
  firstContainer: unknown,
  defaults: { interval: string; metrics: string },
  host: string,
  problems: string[],
): PodScrapeOptions {
  const key = (k: string) => `${ANNOTATION_PREFIX}${k}`;
  const before = problems.length;

  let appPort: number | undefined;
  const port = annotation('port');
  if (port !== undefined) {
    const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (n >= 1 && n <= 65535) appPort = n;
    else problems.push(`annotation ${key('port')} must be a port number 1..65535, got ${quoteValue(port)}`);
  } else {
    // NOTE: no guessed default port: a scrape of a port nothing listens on would only report failures forever;
    // a warning at pod creation says what to fix.
    const ports = isObj(firstContainer) ? firstContainer['ports'] : undefined;
    const p = Array.isArray(ports) ? ports.find(isObj)?.['containerPort'] : undefined;
    if (typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535) appPort = p;
    else problems.push(`no annotation ${key('port')} and the first container declares no containerPort`);
  }

  const path = annotation('path') ?? '/metrics';
  if (!path.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(path)) problems.push(`annotation ${key('path')} must start with "/" and contain no spaces, got ${quoteValue(path)}`);

  const scheme = annotation('scheme') ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') problems.push(`annotation ${key('scheme')} must be "http" or "https", got ${quoteValue(scheme)}`);

  const hostPart = host.includes(':') ? `[${host}]` : host;
  const target = problems.length === before ? `${scheme}://${hostPart}:${appPort}${path}` : undefined;
  const interval = annotation('interval') ?? defaults.interval;
  const metrics = (annotation('metrics') ?? defaults.metrics).split(',').map((s) => s.trim()).join(',');
  return { target, appPort, interval, metrics };
}

/**
 * The annotations a sidecar flag comes from; the others come from the aggregator's --inject-* flags (the
 * node agent's own flags). Neither sets --timeout, --rate-window or --breaker-reset: the sidecar derives them from the interval.
 */
const ANNOTATIONS_OF_FLAG: Readonly<Record<string, readonly string[]>> = {
  target: ['port', 'path', 'scheme'],
  interval: ['interval'],
  timeout: ['interval'],
  'rate-window': ['interval'],
  'breaker-reset': ['interval'],
  metrics: ['metrics'],
};

/** A problem the sidecar's checks found, said as the annotation(s) that caused it, else as `config`'s. */
export function refusalOf(p: Problem, annotation: (key: string) => string | undefined, config = 'the injection config'): string {
  const keys = ANNOTATIONS_OF_FLAG[p.flag ?? ''];
  if (!keys) return `${config}: ${p.message}`;
  const given = keys.filter((k) => annotation(k) !== undefined);
  if (given.length === 0) return `no annotation ${ANNOTATION_PREFIX}${keys[0]}, and the default: ${p.message}`;
  return `annotation ${given.map((k) => ANNOTATION_PREFIX + k).join(', ')}: ${p.message}`;
}
