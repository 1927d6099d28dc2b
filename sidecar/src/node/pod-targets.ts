// Which pods on the node the agent scrapes, and how: the same annotations the injection webhook reads, judged by
// the sidecar's own option checks. Pure: no I/O.
import { ConfigError, type Problem } from '../../../common/src/errors.js';
import { parseFlags } from '../../../common/src/flags.js';
import { annotationReader, readPodScrapeOptions, refusalOf } from '../../../common/src/pod-annotations.js';
import { readOptions, SIDECAR_FLAGS, type SidecarOptions } from '../../../common/src/sidecar-options.js';
import type { PodLabels } from '../labels-file.js';

/** The parts of a v1 Pod the agent reads. */
export interface PodObject {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: Date | string };
  spec?: { nodeName?: string; containers?: unknown[] };
  status?: { phase?: string; podIP?: string };
}

/** A pod the agent should scrape now, or why it cannot. */
export interface PodTarget {
  pod: { namespace: string; name: string; uid: string };
  labels: PodLabels;
  /** Undefined when `problem` says why the pod is not scraped. */
  options: SidecarOptions | undefined;
  problem: string | undefined;
  /** Equal while nothing that needs a new scrape path changed (target, interval, metrics); labels may change. */
  fingerprint: string;
}

/**
 * The opted-in pods of `pods` that run on `nodeName` and can be scraped now (Running, with a pod IP, not being
 * deleted), by uid. A pod with a sidecar (annotation metrics-relay.io/injected), or that asks for one
 * (metrics-relay.io/mode: sidecar), is the sidecar's, not the agent's.
 * `podArgs` are the agent's shared sidecar flags; each pod adds --target, --interval and --metrics.
 */
export function podTargets(pods: readonly PodObject[], nodeName: string, defaults: { interval: string; metrics: string }, podArgs: readonly string[]): Map<string, PodTarget> {
  const out = new Map<string, PodTarget>();
  for (const p of pods) {
    const m = p.metadata;
    if (!m?.uid || !m.name || !m.namespace || p.spec?.nodeName !== nodeName) continue;
    const annotation = annotationReader(m.annotations);
    if (annotation('inject') !== 'true' || annotation('injected') !== undefined || annotation('mode') === 'sidecar') continue;
    if (m.deletionTimestamp || p.status?.phase !== 'Running' || !p.status.podIP) continue;
    const problems: string[] = [];
    const o = readPodScrapeOptions(annotation, p.spec?.containers?.[0], defaults, p.status.podIP, problems);
    const args = [...podArgs, ...(o.target ? ['--target', o.target] : []), '--interval', o.interval, '--metrics', o.metrics];
    let options: SidecarOptions | undefined;
    const found: Problem[] = [];
    try {
      options = readOptions(parseFlags(SIDECAR_FLAGS, args, {}), found);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      found.push(...err.problems);
    }
    for (const f of found) problems.push(refusalOf(f, annotation, "the node agent's flags"));
    const ok = problems.length === 0;
    out.set(m.uid, {
      pod: { namespace: m.namespace, name: m.name, uid: m.uid },
      labels: m.labels ?? {},
      options: ok ? options : undefined,
      problem: ok ? undefined : problems.join('; '),
      fingerprint: ok ? args.join(' ') : `refused: ${problems.join('; ')}`,
    });
  }
  return out;
}
